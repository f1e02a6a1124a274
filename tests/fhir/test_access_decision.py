"""The access decision (`service.fhir.access.reach_of`) as invariants over generated scope sets.

Each property says what no token may ever get, whatever scopes it holds: the rules of docs/security.md
("Who sees what") and https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from service.fhir.access import AUDIT_EVENT, NOWHERE, Principal, confined_type, reach_of
from service.fhir.registry import RESOURCES
from service.fhir.scopes import Permission, parse_scopes

TYPES = sorted([*RESOURCES, AUDIT_EVENT])
CONTENT = {name for name, spec in RESOURCES.items() if spec.kind == "content"}
PERMISSIONS: list[Permission] = ["c", "r", "u", "d", "s"]
WRITES = {"c", "u", "d"}

contexts = st.sampled_from(["patient", "user", "system"])
resource_types = st.sampled_from([*TYPES, "*"])
letters = st.sampled_from(["c", "r", "u", "d", "s", "cruds", "rs", "cud", "read", "write", "*", "ru"])
# Well-formed scopes, and things that look like them but are not (other case, parameters, launch scopes).
well_formed = st.builds(lambda c, t, p: f"{c}/{t}.{p}", contexts, resource_types, letters)
scope_texts = st.one_of(
    well_formed,
    well_formed.map(str.upper),
    well_formed.map(lambda s: s + "?category=x"),
    st.sampled_from(["openid", "fhirUser", "launch/patient", "online_access", "offline_access", "launch"]),
)
patients = st.one_of(st.none(), st.just("a"))


@st.composite
def cases(draw: st.DrawFn, only: str | None = None) -> tuple[list[str], str | None, str, Permission]:
    """Scopes, a patient claim, and a type and permission to ask about, the scopes mostly naming that type
    (or `*`), so that the cases that decide something are common rather than rare."""
    resource_type = only or draw(st.sampled_from(TYPES))
    named = st.sampled_from([resource_type, "*"]) | resource_types
    scope = st.builds(lambda c, t, p: f"{c}/{t}.{p}", contexts, named, letters)
    texts = draw(
        st.lists(scope | scope.map(str.upper) | scope.map(lambda s: s + "?x=y") | scope_texts, max_size=5)
    )
    return texts, draw(patients), resource_type, draw(st.sampled_from(PERMISSIONS))


def principal(scopes: list[str], patient: str | None) -> Principal:
    text = " ".join(scopes)
    return Principal(subject="s", client_id=None, scopes=parse_scopes(text), patient=patient, scope_text=text)


@settings(max_examples=500)
@given(cases())
def test_only_user_or_system_scopes_reach_every_patients_records(
    case: tuple[list[str], str | None, str, Permission],
) -> None:
    scopes, patient, resource_type, permission = case
    reach = reach_of(principal(scopes, patient), resource_type, permission)
    if not reach.allowed or reach.patient is not None:
        return
    shared_read = permission in ("r", "s") and (resource_type in CONTENT or not confined_type(resource_type))
    wide = any(
        s.context != "patient" and s.allows(resource_type, permission)
        for s in principal(scopes, patient).scopes
    )
    assert wide or shared_read


@settings(max_examples=500)
@given(cases())
def test_patient_scopes_alone_stay_in_the_patients_compartment(
    case: tuple[list[str], str | None, str, Permission],
) -> None:
    scopes, patient, resource_type, permission = case
    only_patient = [s for s in scopes if not s.startswith(("user/", "system/"))]
    reach = reach_of(principal(only_patient, patient), resource_type, permission)
    if confined_type(resource_type):
        assert not reach.allowed or reach.patient == patient
        assert patient is not None or not reach.allowed
    elif permission in WRITES:
        # Practitioners, roles and shared content: patient/ scopes never write them.
        assert reach == NOWHERE


@settings(max_examples=500)
@given(cases(only=AUDIT_EVENT))
def test_the_audit_trail_is_read_only_and_only_by_name(
    case: tuple[list[str], str | None, str, Permission],
) -> None:
    scopes, patient, _, permission = case
    reach = reach_of(principal(scopes, patient), AUDIT_EVENT, permission)
    if permission in WRITES:
        assert reach == NOWHERE
    if reach.allowed:
        assert any(s.startswith(("user/AuditEvent.", "system/AuditEvent.")) for s in scopes)


@settings(max_examples=500)
@given(cases())
def test_a_scope_in_another_case_or_with_parameters_grants_nothing(
    case: tuple[list[str], str | None, str, Permission],
) -> None:
    scopes, patient, resource_type, permission = case
    unusable = [s.upper() if "/" in s else s for s in scopes] + [s + "?x=y" for s in scopes if "/" in s]
    reach = reach_of(principal(unusable, patient), resource_type, permission)
    if resource_type in CONTENT and permission in ("r", "s"):
        assert reach.allowed  # shared content is readable with any valid token
    else:
        assert reach == NOWHERE


@settings(max_examples=500)
@given(cases(), scope_texts)
def test_another_scope_never_takes_anything_away(
    case: tuple[list[str], str | None, str, Permission], extra: str
) -> None:
    scopes, patient, resource_type, permission = case
    before = reach_of(principal(scopes, patient), resource_type, permission)
    after = reach_of(principal([*scopes, extra], patient), resource_type, permission)
    if before.allowed:
        assert after.allowed
        assert after.patient is None or after.patient == before.patient
