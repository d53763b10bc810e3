"""Validation and normalisation rules for records written through GraphQL and bulk import.

    errors          FieldError, ValidationFailed, Rule, ErrorCollector
    credit_code     统一社会信用代码 (GB 32100-2015)      identity_number  居民身份证号码
    phone           E.164 via phonenumbers               email            email-validator, offline
    amounts         Decimal, two places, non-negative    dates            dates and China time
    vocabulary      region / industry / source / tag, admin additions, VocabularyCache
    customer        validate_customer_input / _patch, merge_customer_values
    contact, opportunity, ticket, interaction            the same shape for the other records
    lifecycle       opportunity stages, ticket statuses, check_transition
    similarity      company-name reduction and similarity for duplicate detection
    quality         the 3C score (complete, current, accurate)

Nothing here writes: callers own sessions and transactions (`add_term` writes in theirs).
"""
