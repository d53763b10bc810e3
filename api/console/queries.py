"""The GraphQL operations the console sends, named so the audit trail says which page read."""

from __future__ import annotations

HOME = """query ConsoleHome { me {
  user { username displayName department { name } }
  roles { role department { name } } } }"""

POLICIES = """query ConsolePolicies {
  policies { role department resource action scope effect }
  roles }"""

DEPARTMENTS = """query ConsoleDepartments { departments { id name parent { id } } }"""

PREVIEW = """query ConsolePolicyPreview($add: [PolicyRuleInput!], $remove: [PolicyRuleInput!]) {
  previewPolicyChange(add: $add, remove: $remove) {
    affectedUsers locksOut
    changes { username resource field action before after gained lost } } }"""

ADD_POLICY = """mutation ConsoleAddPolicy($rule: PolicyRuleInput!) {
  addPolicy(rule: $rule) { role resource } }"""

REMOVE_POLICY = """mutation ConsoleRemovePolicy($rule: PolicyRuleInput!) {
  removePolicy(rule: $rule) }"""

ACCESS_USERS = """query ConsoleAccessUsers { users { username displayName active } }"""

EXPLAIN = """query ConsoleExplainAccess($username: String!, $resource: String!, $action: Action!,
    $field: String) {
  explainAccess(username: $username, resource: $resource, action: $action, field: $field) {
    allowed reach note
    matched { viaRole heldInDepartment departmentPath
              rule { role department resource action scope effect } } } }"""

EXPLAIN_RECORD = """query ConsoleExplainRecord($username: String!, $recordId: ID!, $action: Action!,
    $field: String) {
  explainRecordAccess(username: $username, recordId: $recordId, action: $action, field: $field) {
    inScope fieldAllowed } }"""

USERS = """query ConsoleUsers {
  departments { id name parent { id } }
  users { id username displayName active department { id name } }
  roleAssignments { username role departmentName } }"""

# deactivateUser's operation is built from the schema's shape: pages.deactivate_shape

AUDIT = """query ConsoleAudit($filter: AuditEventFilter, $first: Int) {
  auditEvents(first: $first, filter: $filter) {
    totalCount
    nodes { id seq at actor actorKind action resourceType resourceIds fields changes operation ip }
  } }"""

INTEGRITY = """query ConsoleAuditIntegrity($verify: Boolean!) { auditIntegrity(verify: $verify) {
  headSeq headHash digestCount latestDigestSeq latestDigestSignedAt verificationKeys
  chain { ok checked firstBadSeq problem detail seconds summary }
  digests { ok checked problem summary } } }"""

EXPORT = """mutation ConsoleAuditExport($filter: AuditEventFilter, $format: AuditExportFormat!) {
  exportAuditEvents(filter: $filter, format: $format) {
    id rowCount url sha256 expiresAt format } }"""
