"""One FHIR interaction per module; each owns its database transaction."""
