"""The forms a deployment serves, one file each: `forms/<form-id>.yaml` (the contract's Forms section).

A form file is read and checked once, at start: a problem stops the local server, the tests and the
functions' init with the file, the line and what is wrong, every problem at once (`FormError`), never
a 500 per request. Validation, storage, the email, the pages, the log, the OpenAPI document, the
export and the HTML snippet all read the `Form` objects made here.

Where the files are read from, first found: the folder `FORMS_DIR` names (tests, the local server);
`forms.json` beside this module, which `sam build` compiles from the files (functions/Makefile), so
the deployed functions never import a YAML parser; else the repository's `forms/` (through the link
functions/forms), or `forms/` in the working folder. The compiled file keeps each key's line, so a
problem found at init (a route to a service that SERVICES does not list) still names the file and
the line.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enquiries import canary
from enquiries.errors import EnquiriesError

DEFAULT_FORM_ID = "enquiry"
FORM_ID = re.compile(r"[a-z0-9-]{1,40}")
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
TYPES = ("name", "email", "phone", "text", "long-text", "choice", "consent", "date")
TEXT_TYPES = ("text", "long-text")
EMAIL_FIELD = "email"
# The attributes a stored item has beside its fields (the notifier's and the acknowledgement's among
# them), and the request's own fields: no form field may take their names.
RESERVED = frozenset(
    {
        "id",
        "form",
        "created_at",
        "expires_at",
        "notified_at",
        "ses_message_id",
        "acknowledgement",
        "acknowledged_at",
        "captcha",
        canary.ATTRIBUTE,
    }
)
# A text field's longest value: the long-text default (the contract's message), also the most allowed.
TEXT_MAX = 5000
SHORT_TEXT_DEFAULT_MAX = 200
TITLE_MAX = 100
# The only setting a choice field can take its choices from (the default form's `service`).
SETTING_CHOICES = "SERVICES"
FORM_KEYS = ("title", "recipients", "route", "fields", "submit")
FIELD_KEYS = ("name", "label", "type", "required", "max_length", "choices", "prompt", "hint")
# The web form's own words (`enquiries form-html`): what a visitor reads beside a field, when it
# differs from the label staff read in the email, and a hint under it; the button's text.
WORDS_MAX = 300
DEFAULT_SUBMIT = "Send"
# The key that holds a mapping's lines in the parsed data (and in the compiled JSON).
LINES = "__lines__"
COMPILED = Path(__file__).with_name("forms.json")
SOURCE_DIR = Path(__file__).resolve().parent.parent / "forms"
# A recipient as SES takes it: an ASCII address (the notifier checks it again as SES would).
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
ADDRESS_MAX = 254


class FormError(EnquiriesError, RuntimeError):
    """One or more form files cannot be used; each problem names the file and the line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("Form configuration error: " + "; ".join(problems))
        self.problems = list(problems)


# Every class here has a docstring: dataclasses writes one from inspect.signature() otherwise, which
# costs the functions' init about a millisecond a class.


@dataclass(frozen=True)
class FormField:
    """One field of a form file, checked."""

    name: str
    label: str
    type: str
    required: bool = False
    max_length: int | None = None
    # For a choice field: its choices, or () with `choices_setting` naming the setting that holds them.
    choices: tuple[str, ...] = ()
    choices_setting: str | None = None
    prompt: str | None = None  # the web form's label, when not `label`
    hint: str | None = None

    @property
    def autocomplete(self) -> str | None:
        """The HTML autocomplete token a browser fills this field from."""
        return {"name": "name", "email": "email", "phone": "tel"}.get(self.type)


@dataclass(frozen=True)
class Route:
    """Who gets the email, by a choice field's value."""

    field: str
    to: Mapping[str, tuple[str, ...]]
    line: int = 0


@dataclass(frozen=True)
class Form:
    """One form file, checked: its id (the file's name), title, fields, recipients and route."""

    id: str
    title: str
    fields: tuple[FormField, ...]
    recipients: tuple[str, ...] = ()  # empty: CLINIC_EMAIL
    route: Route | None = None
    source: str = ""  # the file, as problems name it
    submit: str = DEFAULT_SUBMIT  # the web form's button

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_FORM_ID

    @property
    def noun(self) -> str:
        """What the pages and the email call what a visitor sends: "enquiry" for the default form, else
        its title as in a sentence ("call-back request")."""
        if self.is_default:
            return "enquiry"
        return self.title if self.title[:2].isupper() else self.title[:1].lower() + self.title[1:]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(each.name for each in self.fields)

    def field(self, name: str) -> FormField | None:
        return next((each for each in self.fields if each.name == name), None)

    @property
    def email_field(self) -> FormField:
        return next(each for each in self.fields if each.type == "email")

    @property
    def name_field(self) -> FormField | None:
        return next((each for each in self.fields if each.type == "name"), None)

    def choices(self, each: FormField, services: Sequence[str]) -> tuple[str, ...]:
        """A choice field's choices, with those of a setting read from the settings."""
        return tuple(services) if each.choices_setting == SETTING_CHOICES else each.choices

    def recipients_for(self, item: Mapping[str, Any]) -> tuple[str, ...]:
        """Who gets the email for this stored enquiry: the route's addresses for its choice, else the
        form's recipients (empty: the deployment's CLINIC_EMAIL)."""
        if self.route is not None:
            chosen = item.get(self.route.field)
            if isinstance(chosen, str) and chosen in self.route.to:
                return self.route.to[chosen]
        return self.recipients


@dataclass(frozen=True)
class Forms:
    """Every form of the deployment, by id, in the order of their ids (the default one first)."""

    by_id: Mapping[str, Form] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Form]:
        return iter(self.by_id.values())

    def get(self, form_id: str | None) -> Form | None:
        return self.by_id.get(form_id or DEFAULT_FORM_ID)

    @property
    def default(self) -> Form:
        return self.by_id[DEFAULT_FORM_ID]

    def all_field_names(self) -> tuple[str, ...]:
        """Every form's field names, each once: the default form's first, then the others' in order."""
        return tuple(dict.fromkeys(name for form in self for name in form.field_names))

    def check_routes(self, services: Sequence[str]) -> None:
        """At start, with the settings: a route to a service SERVICES does not list is a FormError."""
        problems = []
        for form in self:
            if form.route is None:
                continue
            routed = form.field(form.route.field)
            if routed is None or routed.choices_setting is None:
                continue
            for value in form.route.to:
                if value not in services:
                    problems.append(
                        f"{form.source}, line {form.route.line}: route: {value!r} is not a choice of"
                        f" {routed.name!r} (SERVICES is {', '.join(services)})"
                    )
        if problems:
            raise FormError(problems)


# --- reading -----------------------------------------------------------------------------------------


def _lines(mapping: Mapping[str, Any]) -> Mapping[str, int]:
    lines = mapping.get(LINES)
    return lines if isinstance(lines, dict) else {}


def _line(mapping: Mapping[str, Any], key: str = "") -> int:
    lines = _lines(mapping)
    return int(lines.get(key, lines.get("", 0)))


def parse_yaml(text: str, source: str) -> Any:
    """The file's data, each mapping with its keys' lines under LINES; a duplicate key is a FormError.

    PyYAML's safe loader (https://pyyaml.org/wiki/PyYAMLDocumentation): only the build, the tests and
    the local server import it."""
    import yaml

    duplicates: list[str] = []

    class _Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    def mapping(loader: _Loader, node: yaml.MappingNode) -> dict[str, Any]:
        lines: dict[str, int] = {"": node.start_mark.line + 1}
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in lines and key:
                duplicates.append(f"{source}, line {key_node.start_mark.line + 1}: {key!r} is given twice")
            lines[key] = key_node.start_mark.line + 1
        data = dict(loader.construct_mapping(node, deep=True))
        data[LINES] = lines
        return data

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise FormError([f"{source}{line}: {problem}"]) from None
    if duplicates:
        raise FormError(duplicates)
    return data


def read_sources(directory: Path) -> dict[str, Any]:
    """The form files of a folder, parsed: {source name: data}. A file that is not YAML is a problem."""
    parsed: dict[str, Any] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.y*ml")):
        source = f"forms/{path.name}"
        try:
            parsed[source] = parse_yaml(path.read_text(encoding="utf-8"), source)
        except FormError as error:
            problems += error.problems
        except (OSError, UnicodeDecodeError):
            problems.append(f"{source}: cannot be read as UTF-8 text")
    if problems:
        raise FormError(problems)
    return parsed


def build_forms(sources: Mapping[str, Any]) -> Forms:
    """The forms from their parsed files, or a FormError naming every problem of every file."""
    problems: list[str] = []
    forms: dict[str, Form] = {}
    for source, data in sources.items():
        form = _form(source, data, problems)
        if form is not None:
            forms[form.id] = form
    if not problems and DEFAULT_FORM_ID not in forms:
        problems.append(f"forms/{DEFAULT_FORM_ID}.yaml: missing: it declares the default form")
    if problems:
        raise FormError(problems)
    ordered = {DEFAULT_FORM_ID: forms[DEFAULT_FORM_ID], **dict(sorted(forms.items()))}
    return Forms(ordered)


def _form(source: str, data: Any, problems: list[str]) -> Form | None:
    before = len(problems)
    name = source.rpartition("/")[2]
    form_id, _, suffix = name.partition(".")
    if suffix != "yaml" or not FORM_ID.fullmatch(form_id):
        problems.append(
            f"{source}: a form file is named <form-id>.yaml, the id 1-40 lowercase letters, digits and"
            " hyphens"
        )
    if not isinstance(data, dict):
        problems.append(f"{source}, line 1: a form file is a mapping of title, fields and so on")
        return None
    for key in data:
        if key != LINES and key not in FORM_KEYS:
            problems.append(
                f"{source}, line {_line(data, key)}: unknown key {key!r} ({', '.join(FORM_KEYS)})"
            )
    title = _title(source, data, problems)
    fields = _fields(source, data, problems)
    recipients = _addresses(source, data, "recipients", problems) if "recipients" in data else ()
    route = _route(source, data, fields, problems)
    submit = _words(source, data, "submit", problems) or DEFAULT_SUBMIT
    if len(problems) > before:
        return None
    return Form(form_id, title, fields, recipients, route, source, submit)


def _words(source: str, data: Mapping[str, Any], key: str, problems: list[str]) -> str | None:
    """Optional web-form words: one line of text (YAML's folded `>-` joins a long one)."""
    given = data.get(key)
    if given is None:
        return None
    if not isinstance(given, str) or not given.strip() or not given.isprintable() or len(given) > WORDS_MAX:
        problems.append(f"{source}, line {_line(data, key)}: {key}: one line of 1-{WORDS_MAX} characters")
        return None
    return " ".join(given.split())


def _title(source: str, data: Mapping[str, Any], problems: list[str]) -> str:
    title = data.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > TITLE_MAX or not title.isprintable():
        problems.append(f"{source}, line {_line(data, 'title')}: title: one line of 1-{TITLE_MAX} characters")
        return ""
    return title.strip()


def _fields(source: str, data: Mapping[str, Any], problems: list[str]) -> tuple[FormField, ...]:
    given = data.get("fields")
    if not isinstance(given, list) or not given:
        problems.append(f"{source}, line {_line(data, 'fields')}: fields: a list of at least one field")
        return ()
    fields: list[FormField] = []
    seen: set[str] = set()
    for entry in given:
        if not isinstance(entry, dict):
            problems.append(
                f"{source}, line {_line(data, 'fields')}: each field is a mapping of name, label, type"
            )
            continue
        made = _field(source, entry, problems)
        if made is None:
            continue
        if made.name in seen:
            problems.append(
                f"{source}, line {_line(entry, 'name')}: the field name {made.name!r} is used twice"
            )
            continue
        seen.add(made.name)
        fields.append(made)
    emails = [each for each in fields if each.type == "email"]
    if len(emails) != 1 and len(fields) == len(given):
        problems.append(
            f"{source}, line {_line(data, 'fields')}: a form has exactly one field of type email (the"
            f" Reply-To), not {len(emails)}"
        )
    # Stored under one name in every form, so that erase, subject-access and the acknowledgement find
    # every enquiry from an address.
    for each in emails:
        if each.name != EMAIL_FIELD:
            problems.append(f"{source}: the field of type email is named {EMAIL_FIELD}, not {each.name!r}")
    return tuple(fields)


def _field(source: str, entry: Mapping[str, Any], problems: list[str]) -> FormField | None:
    before = len(problems)

    def problem(key: str, text: str) -> None:
        problems.append(f"{source}, line {_line(entry, key)}: {text}")

    for key in entry:
        if key != LINES and key not in FIELD_KEYS:
            problem(key, f"unknown key {key!r} of a field ({', '.join(FIELD_KEYS)})")
    name, label, kind = entry.get("name"), entry.get("label"), entry.get("type")
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        problem("name", f"name {name!r}: a lowercase letter, then up to 39 lowercase letters, digits or _")
    elif name in RESERVED:
        problem("name", f"name {name!r} is reserved ({', '.join(sorted(RESERVED))})")
    if not isinstance(label, str) or not label.strip() or not label.isprintable() or len(label) > TITLE_MAX:
        problem("label", f"label: one line of 1-{TITLE_MAX} characters")
    if kind not in TYPES:
        problem("type", f"unknown type {kind!r} (one of: {' | '.join(TYPES)})")
    required = entry.get("required", False)
    if not isinstance(required, bool):
        problem("required", "required: true or false")
    max_length = entry.get("max_length")
    if max_length is not None:
        if kind not in TEXT_TYPES:
            problem("max_length", "max_length is for the text types (text, long-text) only")
        elif (
            isinstance(max_length, bool) or not isinstance(max_length, int) or not 1 <= max_length <= TEXT_MAX
        ):
            problem("max_length", f"max_length: a whole number from 1 to {TEXT_MAX}")
    choices, setting = _choices(entry, kind, problem)
    prompt, hint = _words(source, entry, "prompt", problems), _words(source, entry, "hint", problems)
    if len(problems) > before:
        return None
    if kind in TEXT_TYPES and max_length is None:
        max_length = TEXT_MAX if kind == "long-text" else SHORT_TEXT_DEFAULT_MAX
    return FormField(
        name=str(name),
        label=str(label).strip(),
        type=str(kind),
        required=bool(required),
        max_length=max_length,
        choices=choices,
        choices_setting=setting,
        prompt=prompt,
        hint=hint,
    )


def _choices(
    entry: Mapping[str, Any], kind: Any, problem: Callable[[str, str], None]
) -> tuple[tuple[str, ...], str | None]:
    """A choice field's choices, or the setting that holds them (SERVICES)."""
    choices = entry.get("choices")
    if kind != "choice":
        if choices is not None:
            problem("choices", "choices are for a field of type choice only")
        return (), None
    if choices == SETTING_CHOICES:
        return (), SETTING_CHOICES
    if (
        not isinstance(choices, list)
        or not choices
        or not all(isinstance(each, str) and each.strip() and each.isprintable() for each in choices)
        or len({each.strip().casefold() for each in choices}) != len(choices)
    ):
        problem("choices", f"choices: a list of different one-line texts, or {SETTING_CHOICES}")
        return (), None
    return tuple(each.strip() for each in choices), None


def _addresses(source: str, data: Mapping[str, Any], key: str, problems: list[str]) -> tuple[str, ...]:
    given = data.get(key)
    line = _line(data, key)
    if isinstance(given, str):
        given = [given]
    if not isinstance(given, list) or not given:
        problems.append(f"{source}, line {line}: {key}: a list of email addresses")
        return ()
    for address in given:
        if not isinstance(address, str) or len(address) > ADDRESS_MAX or not _ADDRESS.fullmatch(address):
            problems.append(f"{source}, line {line}: {key}: {address!r} is not an email address")
    return tuple(str(address) for address in given)


def _route(
    source: str, data: Mapping[str, Any], fields: tuple[FormField, ...], problems: list[str]
) -> Route | None:
    route = data.get("route")
    if route is None:
        return None
    line = _line(data, "route")
    if (
        not isinstance(route, dict)
        or set(route) - {LINES} != {"field", "to"}
        or not isinstance(route["to"], dict)
    ):
        problems.append(f"{source}, line {line}: route: a mapping of field (a choice field) and to")
        return None
    routed = next((each for each in fields if each.name == route["field"]), None)
    if routed is None or routed.type != "choice":
        problems.append(
            f"{source}, line {_line(route, 'field')}: route: {route['field']!r} is not a choice field"
        )
        return None
    to: dict[str, tuple[str, ...]] = {}
    for value in route["to"]:
        if value == LINES:
            continue
        where = _line(route["to"], value)
        if routed.choices_setting is None and value not in routed.choices:
            problems.append(f"{source}, line {where}: route: {value!r} is not a choice of {routed.name!r}")
        to[value] = _addresses(source, route["to"], value, problems)
    return Route(str(route["field"]), to, _line(route["to"]) or line)


# --- loading ------------------------------------------------------------------------------------------


def forms_directory() -> Path:
    """The folder of form files: FORMS_DIR (tests, the local server), else the repository's; for the
    operator's command installed without the repository (`pip install .`), `forms/` where it runs."""
    given = os.environ.get("FORMS_DIR", "").strip()
    if given:
        return Path(given)
    return SOURCE_DIR if SOURCE_DIR.is_dir() else Path.cwd() / "forms"


def load_forms(directory: Path | None = None) -> Forms:
    """The deployment's forms: a folder's files (YAML), or the compiled forms.json of a build."""
    if directory is None and not os.environ.get("FORMS_DIR", "").strip() and COMPILED.is_file():
        sources = json.loads(COMPILED.read_text(encoding="utf-8"))
    else:
        folder = directory or forms_directory()
        if not folder.is_dir():
            raise FormError([f"{folder.name}/: no folder of form files"])
        sources = read_sources(folder)
    return build_forms(sources)


_loaded: dict[str, Forms] = {}


def deployment_forms() -> Forms:
    """The forms, read once per process (the functions read them at init)."""
    key = os.environ.get("FORMS_DIR", "")
    if key not in _loaded:
        _loaded[key] = load_forms()
    return _loaded[key]


def compile_forms(directory: Path, output: Path) -> None:
    """The build's step: check the form files and write them as JSON, lines kept."""
    sources = read_sources(directory)
    build_forms(sources)
    output.write_text(json.dumps(sources, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m enquiries.forms FORMS-DIR OUTPUT.json` (functions/Makefile)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 2:  # noqa: PLR2004 - the two arguments
        print("usage: python -m enquiries.forms FORMS-DIR OUTPUT.json", file=sys.stderr)
        return 2
    try:
        compile_forms(Path(arguments[0]), Path(arguments[1]))
    except FormError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
