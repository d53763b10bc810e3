"""Validation and normalisation rules for records written through GraphQL and bulk import."""
