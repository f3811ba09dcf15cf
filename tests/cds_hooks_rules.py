"""One reusable check of CDS Hooks 2.0 responses: every test that gets a discovery document or a
service response runs it, so a rule broken anywhere fails everywhere.

Rules (CDS Hooks 2.0: "Discovery", "CDS Service Response", "Null and empty JSON elements"):
- discovery: `services`; each service has `hook`, `description`, `id` (strings); `title`,
  `usageRequirements` strings and `prefetch` an object of strings when present;
- response: `cards` (an array, may be empty); `systemActions` never (our rule: nothing changes an order
  without a clinician's click);
- card: `summary` (under 140 characters), `indicator` (info, warning, critical), `source` with a
  `label`; `selectionBehavior` (at-most-one, any) present whenever there are suggestions (and only
  then); each suggestion has a `label`; each action a `type` (create, update, delete) and a
  `description`, a `resource` for create/update, a `resourceId` for delete; override reasons are
  Codings with `system`, `code` and `display`;
- link: `label`, an absolute `url`, `type` absolute or smart; `appContext` only on smart links;
- nothing is null or empty (`null`, `""`, `[]`, `{}`), except the top-level empty arrays the
  specification allows (`cards: []`, `services: []`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from anakinra_cds import jsonutil

INDICATORS = {"info", "warning", "critical"}
SELECTION_BEHAVIORS = {"at-most-one", "any"}
ACTION_TYPES = {"create", "update", "delete"}
LINK_TYPES = {"absolute", "smart"}
CARD_FIELDS = {
    "uuid",
    "summary",
    "detail",
    "indicator",
    "source",
    "suggestions",
    "selectionBehavior",
    "overrideReasons",
    "links",
    "extension",
}
SERVICE_FIELDS = {"hook", "title", "description", "id", "prefetch", "usageRequirements", "extension"}


def _empty_values(value: Any, path: str) -> list[str]:
    problems = []
    if value is None or value == "" or value == [] or value == {}:
        return [f"{path} is null or empty"]
    if isinstance(value, dict):
        for key, item in value.items():
            problems.extend(_empty_values(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems.extend(_empty_values(item, f"{path}[{index}]"))
    return problems


def _string(container: dict, key: str, path: str, *, required: bool) -> list[str]:
    if key not in container:
        return [f"{path}.{key} is required"] if required else []
    if not isinstance(container[key], str) or not container[key]:
        return [f"{path}.{key} must be a non-empty string"]
    return []


def _absolute_url(value: Any, path: str) -> list[str]:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return [f"{path} must be an absolute URL, not {value!r}"]
    return []


def _coding(coding: Any, path: str, *, display_required: bool) -> list[str]:
    if not isinstance(coding, dict):
        return [f"{path} must be a Coding"]
    problems = _string(coding, "system", path, required=True) + _string(coding, "code", path, required=True)
    return problems + _string(coding, "display", path, required=display_required)


def _action(action: Any, path: str) -> list[str]:
    if not isinstance(action, dict):
        return [f"{path} must be an object"]
    problems = _string(action, "description", path, required=True)
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        problems.append(f"{path}.type must be one of {sorted(ACTION_TYPES)}, not {kind!r}")
    if kind in ("create", "update") and not (
        isinstance(action.get("resource"), dict) and action["resource"].get("resourceType")
    ):
        problems.append(f"{path}.resource must be a FHIR resource for {kind}")
    if kind == "delete":
        problems.extend(_string(action, "resourceId", path, required=True))
    return problems


def _suggestion(suggestion: Any, path: str) -> list[str]:
    if not isinstance(suggestion, dict):
        return [f"{path} must be an object"]
    problems = _string(suggestion, "label", path, required=True) + _string(suggestion, "uuid", path, required=False)
    if "isRecommended" in suggestion and not isinstance(suggestion["isRecommended"], bool):
        problems.append(f"{path}.isRecommended must be a boolean")
    for index, action in enumerate(suggestion.get("actions") or []):
        problems.extend(_action(action, f"{path}.actions[{index}]"))
    return problems


def _link(link: Any, path: str) -> list[str]:
    if not isinstance(link, dict):
        return [f"{path} must be an object"]
    problems = _string(link, "label", path, required=True) + _absolute_url(link.get("url"), f"{path}.url")
    if link.get("type") not in LINK_TYPES:
        problems.append(f"{path}.type must be absolute or smart, not {link.get('type')!r}")
    if "appContext" in link and link.get("type") != "smart":
        problems.append(f"{path}.appContext is only allowed on smart links")
    return problems


def card_problems(card: Any, path: str = "card") -> list[str]:
    if not isinstance(card, dict):
        return [f"{path} must be an object"]
    problems = [f"{path}.{key} is not a CDS Hooks card field" for key in sorted(set(card) - CARD_FIELDS)]
    problems.extend(_string(card, "summary", path, required=True))
    if isinstance(card.get("summary"), str) and len(card["summary"]) >= 140:
        problems.append(f"{path}.summary has {len(card['summary'])} characters; it must be under 140")
    if card.get("indicator") not in INDICATORS:
        problems.append(f"{path}.indicator must be info, warning or critical, not {card.get('indicator')!r}")
    problems.extend(_string(card, "uuid", path, required=False) + _string(card, "detail", path, required=False))
    source = card.get("source")
    if not isinstance(source, dict):
        problems.append(f"{path}.source is required")
    else:
        problems.extend(_string(source, "label", f"{path}.source", required=True))
        for key in ("url", "icon"):
            if key in source:
                problems.extend(_absolute_url(source[key], f"{path}.source.{key}"))
        if "topic" in source:
            problems.extend(_coding(source["topic"], f"{path}.source.topic", display_required=False))
    suggestions = card.get("suggestions")
    if suggestions is not None:
        if card.get("selectionBehavior") not in SELECTION_BEHAVIORS:
            problems.append(f"{path}.selectionBehavior must be at-most-one or any when there are suggestions")
        for index, suggestion in enumerate(suggestions):
            problems.extend(_suggestion(suggestion, f"{path}.suggestions[{index}]"))
    elif "selectionBehavior" in card:
        problems.append(f"{path}.selectionBehavior without suggestions")
    for index, reason in enumerate(card.get("overrideReasons") or []):
        problems.extend(_coding(reason, f"{path}.overrideReasons[{index}]", display_required=True))
    for index, link in enumerate(card.get("links") or []):
        problems.extend(_link(link, f"{path}.links[{index}]"))
    return problems + _empty_values(card, path)


def response_problems(response: Any) -> list[str]:
    """Every CDS Hooks 2.0 rule a service response breaks (empty when it conforms)."""
    if not isinstance(response, dict) or not isinstance(response.get("cards"), list):
        return ["a response is an object with a cards array"]
    problems = [f"response.{key} is not a response field" for key in sorted(set(response) - {"cards", "extension"})]
    if "systemActions" in response:
        problems.append("response.systemActions must never be sent")
    for index, card in enumerate(response["cards"]):
        problems.extend(card_problems(card, f"cards[{index}]"))
    return problems


def discovery_problems(document: Any) -> list[str]:
    """Every CDS Hooks 2.0 rule a discovery document breaks (empty when it conforms)."""
    if not isinstance(document, dict) or not isinstance(document.get("services"), list):
        return ["discovery is an object with a services array"]
    problems = []
    for index, service in enumerate(document["services"]):
        path = f"services[{index}]"
        if not isinstance(service, dict):
            problems.append(f"{path} must be an object")
            continue
        problems.extend(f"{path}.{key} is not a service field" for key in sorted(set(service) - SERVICE_FIELDS))
        for key in ("hook", "description", "id"):
            problems.extend(_string(service, key, path, required=True))
        for key in ("title", "usageRequirements"):
            problems.extend(_string(service, key, path, required=False))
        prefetch = service.get("prefetch")
        if prefetch is not None and not (
            isinstance(prefetch, dict) and all(isinstance(v, str) and v for v in prefetch.values())
        ):
            problems.append(f"{path}.prefetch must map keys to FHIR query strings")
        problems.extend(_empty_values(service, path))
    return problems


def assert_conforms(response: Any) -> None:
    problems = response_problems(response)
    assert problems == [], "CDS Hooks 2.0 rules broken:\n" + "\n".join(problems)


def assert_discovery_conforms(document: Any) -> None:
    problems = discovery_problems(document)
    assert problems == [], "CDS Hooks 2.0 discovery rules broken:\n" + "\n".join(problems)


def conforming_cards(response) -> list[dict]:
    """The cards of a 200 hook response, after checking the whole response against the rules above."""
    assert response.status_code == 200, response.content
    data = jsonutil.loads(response.content)
    assert_conforms(data)
    return data["cards"]


def only_card(response) -> dict:
    cards = conforming_cards(response)
    assert len(cards) == 1
    return cards[0]
