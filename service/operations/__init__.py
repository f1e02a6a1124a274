"""FHIR operations ($validate, $populate, $extract, $apply …), one module each."""
