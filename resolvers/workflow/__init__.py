"""The sales workflow (issue 18): tasks, contracts and payments, reminders, history, handover."""
