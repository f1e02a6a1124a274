"""One FHIR interaction per module; each owns its database transaction.

The modules imported below register write rules and after-write hooks (`service.interactions.hooks`);
importing them here means any code that writes through an interaction has them, not only the web app.
"""

from __future__ import annotations

from service.interactions import questionnaire_response as questionnaire_response
