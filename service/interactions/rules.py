"""The write rules and after-write hooks of the service, registered in one place when the application is
built (`service.app.create_app`, and the command-line tools that write)."""

from __future__ import annotations

from service.interactions.questionnaire_response import check_questionnaire_response, extract_on_completion
from service.interactions.references import CHECKED_TYPES, check_references
from service.interactions.writes import WritePipeline, install_write_pipeline


def standard_write_pipeline() -> WritePipeline:
    pipeline = WritePipeline()
    # A response is judged against its worksheet first: its answers' problems are what a portal must show.
    pipeline.add_rule(["QuestionnaireResponse"], check_questionnaire_response)
    pipeline.add_rule(CHECKED_TYPES, check_references)
    pipeline.add_after_write("QuestionnaireResponse", extract_on_completion)
    return pipeline


def install_standard_write_pipeline() -> None:
    install_write_pipeline(standard_write_pipeline())
