"""Builders for test Questionnaires and QuestionnaireResponses, plus two rich worksheets used by many tests.

The builders take FHIR element names as keyword arguments (`required=True`, `answerValueSet=...`) so a test
reads like the JSON it produces, without copying JSON files around.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

Q_URL = "http://example.org/fhir/ipt/Questionnaire/test"
Q_VERSION = "1.0.0"
SYSTEM = "http://example.org/fhir/ipt/CodeSystem/test"
VS_AREA = "http://example.org/fhir/ipt/ValueSet/ipt-problem-area"
AREA_SYSTEM = "http://example.org/fhir/ipt/CodeSystem/ipt-problem-area"
LOINC = "http://loinc.org"

EXT_MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
EXT_MIN_LENGTH = "http://hl7.org/fhir/StructureDefinition/minLength"
EXT_MIN_OCCURS = "http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs"
EXT_MAX_OCCURS = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"
EXT_ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
EXT_EXTRACT = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-observationExtract"


# --- Questionnaire side -------------------------------------------------------------------------------


def questionnaire(*items: JSON, url: str = Q_URL, version: str | None = Q_VERSION, **fields: Any) -> JSON:
    resource: JSON = {"resourceType": "Questionnaire", "url": url, "status": "active", **fields}
    if version is not None:
        resource["version"] = version
    if items:
        resource["item"] = list(items)
    return resource


def question(link_id: str, type_: str, *children: JSON, text: str | None = None, **fields: Any) -> JSON:
    item: JSON = {
        "linkId": link_id,
        "type": type_,
        "text": text or link_id.replace(".", " ").title(),
        **fields,
    }
    if children:
        item["item"] = list(children)
    return item


def group(link_id: str, *children: JSON, text: str | None = None, **fields: Any) -> JSON:
    return question(link_id, "group", *children, text=text, **fields)


def display(link_id: str, text: str = "Please read this first") -> JSON:
    return {"linkId": link_id, "type": "display", "text": text}


def coding(code: str, system: str | None = SYSTEM, display: str | None = None) -> JSON:
    value: JSON = {"code": code}
    if system is not None:
        value["system"] = system
    if display is not None:
        value["display"] = display
    return value


def options(*codes: str, system: str = SYSTEM, weights: tuple[int, ...] | None = None) -> list[JSON]:
    """answerOption entries with Codings; `weights` adds the ordinalValue extension."""
    result = []
    for i, code in enumerate(codes):
        option: JSON = {"valueCoding": coding(code, system, code.title())}
        if weights is not None:
            option["extension"] = [{"url": EXT_ORDINAL, "valueDecimal": weights[i]}]
        result.append(option)
    return result


def value_options(key: str, *values: Any) -> list[JSON]:
    return [{key: v} for v in values]


def when(question_id: str, operator: str, **answer: Any) -> JSON:
    """One enableWhen, e.g. `when("mode", "=", answerCoding=coding("talk"))`."""
    return {"question": question_id, "operator": operator, **answer}


def ext(url: str, **value: Any) -> JSON:
    return {"url": url, **value}


# --- QuestionnaireResponse side -----------------------------------------------------------------------


def response(
    *items: JSON, status: str = "completed", canonical: str = f"{Q_URL}|{Q_VERSION}", **fields: Any
) -> JSON:
    resource: JSON = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": canonical,
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "authored": "2024-05-31T10:00:00Z",
        **fields,
    }
    if items:
        resource["item"] = list(items)
    return resource


def item(link_id: str, *answers: JSON, items: list[JSON] | None = None) -> JSON:
    """A response item; pass answers positionally, group children through `items`."""
    result: JSON = {"linkId": link_id}
    if answers:
        result["answer"] = list(answers)
    if items is not None:
        result["item"] = items
    return result


def answer(*children: JSON, **value: Any) -> JSON:
    """One answer, e.g. `answer(valueInteger=3)`; positional arguments become `answer.item`."""
    result: JSON = dict(value)
    if children:
        result["item"] = list(children)
    return result


# --- two rich worksheets ------------------------------------------------------------------------------

AREA_CODES = frozenset(
    (AREA_SYSTEM, code) for code in ("grief", "role-dispute", "role-transition", "interpersonal-deficits")
)
VALUE_SETS: dict[str, frozenset[tuple[str | None, str]]] = {VS_AREA: AREA_CODES}


def people_worksheet() -> JSON:
    """A worksheet with every item type, repeating groups, options, value sets, enableWhen and nesting."""
    return questionnaire(
        display("intro", "List the people who matter to you."),
        group(
            "person",
            question(
                "person.name",
                "string",
                text="Name",
                required=True,
                maxLength=40,
                extension=[ext(EXT_MIN_LENGTH, valueInteger=2)],
            ),
            question(
                "person.ring",
                "integer",
                text="Closeness ring",
                required=True,
                extension=[ext(EXT_MIN_VALUE, valueInteger=1), ext(EXT_MAX_VALUE, valueInteger=4)],
            ),
            question(
                "person.relation",
                "choice",
                text="Relationship",
                required=True,
                answerOption=options("spouse", "parent", "friend"),
            ),
            question(
                "person.notes", "text", text="Notes", enableWhen=[when("person.ring", "<=", answerInteger=2)]
            ),
            question("person.conflict", "boolean", text="Any conflict?"),
            group(
                "person.conflict-detail",
                question("person.conflict.what", "string", text="What about", required=True),
                question("person.conflict.when", "date", text="Since when"),
                text="Conflict",
                enableWhen=[when("person.conflict", "=", answerBoolean=True)],
            ),
            text="Person",
            required=True,
            repeats=True,
            extension=[ext(EXT_MIN_OCCURS, valueInteger=1), ext(EXT_MAX_OCCURS, valueInteger=4)],
        ),
        question(
            "mode", "choice", text="How will you do it", required=True, answerOption=options("talk", "write")
        ),
        group(
            "talk",
            question("talk.plan", "text", text="Your plan for the talk", required=True),
            text="Talk",
            enableWhen=[when("mode", "=", answerCoding=coding("talk"))],
        ),
        question(
            "write-plan",
            "string",
            text="What you will write",
            enableWhen=[when("mode", "=", answerCoding=coding("write"))],
        ),
        question(
            "has-support",
            "boolean",
            question(
                "support.who",
                "string",
                text="Who supports you",
                required=True,
                enableWhen=[when("has-support", "=", answerBoolean=True)],
            ),
            text="Do you have support",
            required=True,
        ),
        question(
            "mood",
            "decimal",
            text="Mood today",
            extension=[ext(EXT_MIN_VALUE, valueDecimal=0), ext(EXT_MAX_VALUE, valueDecimal=10)],
        ),
        question("started", "dateTime", text="Started at"),
        question("alarm", "time", text="Reminder time"),
        question("link", "url", text="Web page", maxLength=60),
        question("file", "attachment", text="Photo"),
        question("therapist", "reference", text="Therapist"),
        question("weight", "quantity", text="Weight"),
        question(
            "feeling",
            "open-choice",
            text="Feeling",
            repeats=True,
            answerOption=options("sad", "calm", "angry"),
        ),
        question("area", "choice", text="Problem area", answerValueSet=VS_AREA),
        question("score", "choice", text="Score", answerOption=value_options("valueInteger", 0, 1, 2, 3)),
        question(
            "other",
            "string",
            text="Anything else",
            enableWhen=[
                when("mode", "!=", answerCoding=coding("write")),
                when("mood", ">=", answerDecimal=5),
            ],
            enableBehavior="any",
        ),
        question(
            "birth", "date", text="Birth date", enableWhen=[when("has-support", "exists", answerBoolean=True)]
        ),
    )


def operators_worksheet() -> JSON:
    """enableWhen with every operator over several answer types, and `enableBehavior = all`."""
    return questionnaire(
        question("n", "integer", text="Number", required=True),
        question("d", "date", text="Date", required=True),
        question("t", "time", text="Time", required=True),
        question("s", "string", text="Word", required=True),
        question("q", "quantity", text="Amount", required=True),
        question("c", "choice", text="Colour", required=True, answerOption=options("red", "green", "blue")),
        question("n-gt", "string", text="Number above 5", enableWhen=[when("n", ">", answerInteger=5)]),
        question(
            "n-le",
            "string",
            text="Number at most 5",
            required=True,
            enableWhen=[when("n", "<=", answerDecimal=5)],
        ),
        question("d-lt", "string", text="Before 2000", enableWhen=[when("d", "<", answerDate="2000-01-01")]),
        question(
            "d-ge",
            "string",
            text="From 2000",
            required=True,
            enableWhen=[when("d", ">=", answerDate="2000-01-01")],
        ),
        question("t-gt", "string", text="Afternoon", enableWhen=[when("t", ">", answerTime="12:00:00")]),
        question("s-eq", "string", text="Said yes", enableWhen=[when("s", "=", answerString="yes")]),
        question(
            "q-gt",
            "string",
            text="Over 2 kg",
            enableWhen=[when("q", ">", answerQuantity={"value": 2, "unit": "kg"})],
        ),
        question("c-ne", "string", text="Not red", enableWhen=[when("c", "!=", answerCoding=coding("red"))]),
        question(
            "all",
            "string",
            text="Both",
            enableWhen=[when("n", ">=", answerInteger=1), when("c", "=", answerCoding=coding("blue"))],
            enableBehavior="all",
        ),
        question(
            "gone", "string", text="Never answered", enableWhen=[when("x", "exists", answerBoolean=False)]
        ),
    )


def phq9_like() -> JSON:
    """A PHQ-style panel: scored options, a total (LOINC 44261-6) and observation extraction on the panel."""
    scored = [("q1", "44250-9", "Little interest"), ("q2", "44255-8", "Feeling down")]
    return questionnaire(
        group(
            "panel",
            *[
                question(
                    link_id,
                    "choice",
                    text=text,
                    required=True,
                    code=[{"system": LOINC, "code": code}],
                    answerOption=options(
                        "LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9", system=LOINC, weights=(0, 1, 2, 3)
                    ),
                )
                for link_id, code, text in scored
            ],
            question(
                "total",
                "integer",
                text="Total score",
                code=[{"system": LOINC, "code": "44261-6"}],
                readOnly=True,
            ),
            question("comment", "string", text="Comment", code=[{"system": LOINC, "code": "00000-0"}]),
            question("local", "string", text="Local", code=[{"system": SYSTEM, "code": "x"}]),
            text="PHQ",
            extension=[ext(EXT_EXTRACT, valueBoolean=True)],
        ),
        question("private", "integer", text="Not extracted", code=[{"system": LOINC, "code": "11111-1"}]),
        url="http://example.org/fhir/ipt/Questionnaire/phq",
    )
