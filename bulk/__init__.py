"""Bulk data in and out: exports to one-time downloads, imports with reports and progress.

settings      BulkSettings: limits, places, lifetimes (on `Settings.bulk`)
runtime       BulkRuntime: what bulk work needs beyond one request (sessions, tasks)
cells         formula neutralisation and the text form of values, both ways
files         streamed CSV (UTF-8 with BOM) and XLSX writers, one-time download tokens
exports       export_records: policy-masked rows from a server-side cursor into a file
sources       reading CSV (encoding detected) and XLSX uploads as rows, with clear errors
columns       header names (Chinese or English) → customer fields
imports       run_import: validation, duplicate checks, batches, progress, report
operations    the GraphQL root fields
"""
