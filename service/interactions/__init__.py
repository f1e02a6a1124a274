"""One FHIR interaction per module; each owns its database transaction.

Every write goes through the write pipeline (`service.interactions.writes`), whose rules and hooks the
application installs when it is built (`service.interactions.rules`).
"""
