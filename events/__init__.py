"""Events out (issue 20): the transactional outbox, signed webhooks, subscriptions, lead intake.

outbox        enqueue: a change's event rows, in the change's transaction
hub           one LISTEN connection per process, fanned out to subscribers
safety        SSRF checks of webhook URLs, at creation and at send time
principals    the Principal and decisions a webhook reads as (its role or partner token)
payloads      a record as a principal may read it: the same query path, the same mask
delivery      the delivery worker: claim, sign, send, retry, dead-letter
webhooks      createWebhook / deleteWebhook / webhooks / webhookDeliveries
subscription  Subscription.recordChanged over graphql-transport-ws
leads         captureLead
"""
