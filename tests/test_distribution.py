"""What hassfest and the HACS action check on a custom integration, as plain tests.

Home Assistant's hassfest lives in core's repository (script/hassfest) and is not
in the pip package, and the HACS action runs in GitHub; so the checks that matter
for this repository are repeated here, on the files: manifest.json, hacs.json,
the translations against the config flow and the code's translation keys,
services.yaml against the registered actions, the brand icons and CONFIG_SCHEMA.

Each check_* function takes the repository root and returns a list of problems,
so the tests at the end can prove each check notices a removed key on a copy.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
import json
from pathlib import Path
import shutil
import struct
from typing import Any

from awesomeversion import (
    AwesomeVersion,
    AwesomeVersionException,
    AwesomeVersionStrategy,
)
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "misskey"

# hassfest (script/hassfest/manifest.py).
MANIFEST_REQUIRED = {
    "domain",
    "name",
    "codeowners",
    "config_flow",
    "documentation",
    "integration_type",
    "iot_class",
    "issue_tracker",
    "requirements",
    "version",
}
MANIFEST_ALLOWED = MANIFEST_REQUIRED | {
    "after_dependencies",
    "bluetooth",
    "dependencies",
    "dhcp",
    "disabled",
    "homekit",
    "import_executor",
    "loggers",
    "mqtt",
    "quality_scale",
    "single_config_entry",
    "ssdp",
    "usb",
    "zeroconf",
}
IOT_CLASSES = {
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
}
INTEGRATION_TYPES = {
    "device",
    "entity",
    "hardware",
    "helper",
    "hub",
    "service",
    "system",
    "virtual",
}
VERSION_STRATEGIES = [
    AwesomeVersionStrategy.CALVER,
    AwesomeVersionStrategy.SEMVER,
    AwesomeVersionStrategy.SIMPLEVER,
    AwesomeVersionStrategy.BUILDVER,
    AwesomeVersionStrategy.PEP440,
]

# HACS (hacs.xyz/docs/publish/start, hacs.json).
HACS_ALLOWED = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "persistent_directory",
    "hacs",
    "render_readme",
}

# Home Assistant's integration quality scale, as core's quality_scale.yaml files
# list it (homeassistant/components/*/quality_scale.yaml).
QUALITY_SCALE_RULES = {
    "bronze": [
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ],
    "silver": [
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ],
    "gold": [
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}

FLOW_METHODS_WITH_STEP = {
    "async_show_form",
    "async_external_step",
    "async_show_progress",
    "async_show_menu",
}
REGISTER_FUNCTIONS = {
    "async_register",
    "async_register_admin_service",
    "async_register_platform_entity_service",
}


def package(root: Path) -> Path:
    """Return the integration's folder."""
    return root / "custom_components" / DOMAIN


def load_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def modules(root: Path) -> Iterator[tuple[Path, ast.Module]]:
    """Parse every module of the package."""
    for path in sorted(package(root).glob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def string_constants(root: Path) -> dict[str, str]:
    """Return the package's module-level NAME = "text" constants (const.py first)."""
    found: dict[str, str] = {}
    for _, tree in modules(root):
        for node in tree.body:
            target: ast.expr | None = None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            elif isinstance(node, ast.AnnAssign):
                target = node.target
            value = getattr(node, "value", None)
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                found.setdefault(target.id, value.value)
    return found


def resolve(node: ast.expr, constants: dict[str, str]) -> str | None:
    """Return the string an expression stands for, if it is a literal or constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.Attribute):
        return constants.get(node.attr)
    return None


def call_name(node: ast.Call) -> str:
    """Return the called function's or method's name."""
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def keyword(node: ast.Call, name: str) -> ast.expr | None:
    """Return a call's keyword argument."""
    return next((kw.value for kw in node.keywords if kw.arg == name), None)


def literal_returns(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Return the string literals a function returns."""
    return {
        node.value.value
        for node in ast.walk(func)
        if isinstance(node, ast.Return)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


# --- manifest.json and hacs.json ---------------------------------------------


def valid_version(value: Any) -> bool:
    """Return whether hassfest accepts this version."""
    if not isinstance(value, str):
        return False
    try:
        AwesomeVersion(value, ensure_strategy=VERSION_STRATEGIES)
    except AwesomeVersionException:
        return False
    return True


def check_manifest(root: Path) -> list[str]:
    """Check manifest.json as hassfest does for a custom integration."""
    problems: list[str] = []
    manifest = load_json(package(root) / "manifest.json")
    keys = list(manifest)
    expected_order = [
        "domain",
        "name",
        *sorted(k for k in keys if k not in {"domain", "name"}),
    ]
    if keys != expected_order:
        problems.append(f"manifest keys not sorted (domain, name, then a-z): {keys}")
    problems.extend(
        f"manifest misses {key!r}" for key in sorted(MANIFEST_REQUIRED - set(manifest))
    )
    problems.extend(
        f"manifest has unknown key {key!r}"
        for key in sorted(set(manifest) - MANIFEST_ALLOWED)
    )
    if manifest.get("domain") != package(root).name:
        problems.append("manifest domain does not match the folder name")
    if "version" in manifest and not valid_version(manifest["version"]):
        problems.append(f"manifest version {manifest['version']!r} is not valid")
    if "iot_class" in manifest and manifest["iot_class"] not in IOT_CLASSES:
        problems.append(f"manifest iot_class {manifest['iot_class']!r} is not valid")
    if (
        "integration_type" in manifest
        and manifest["integration_type"] not in INTEGRATION_TYPES
    ):
        problems.append(
            f"manifest integration_type {manifest['integration_type']!r} is not valid"
        )
    problems.extend(
        f"manifest {key} is not an https URL"
        for key in ("documentation", "issue_tracker")
        if key in manifest and not str(manifest[key]).startswith("https://")
    )
    if not manifest.get("codeowners") or not all(
        str(owner).startswith("@") for owner in manifest.get("codeowners", [])
    ):
        problems.append("manifest codeowners must be a non-empty list of @names")
    if manifest.get("config_flow") is not True:
        problems.append("manifest config_flow must be true")
    if not isinstance(manifest.get("requirements", []), list):
        problems.append("manifest requirements must be a list")
    return problems


def check_hacs(root: Path) -> list[str]:
    """Check hacs.json as the HACS action does, and what HACS needs beside it."""
    problems: list[str] = []
    hacs = load_json(root / "hacs.json")
    if not isinstance(hacs.get("name"), str) or not hacs["name"]:
        problems.append("hacs.json misses 'name'")
    problems.extend(
        f"hacs.json has unknown key {key!r}" for key in sorted(set(hacs) - HACS_ALLOWED)
    )
    if "homeassistant" in hacs and not valid_version(hacs["homeassistant"]):
        problems.append(
            f"hacs.json homeassistant {hacs['homeassistant']!r} is not valid"
        )
    if not (root / "README.md").is_file():
        problems.append("no README.md (HACS shows it as the information)")
    integrations = [p for p in (root / "custom_components").iterdir() if p.is_dir()]
    integrations = [p for p in integrations if p.name != "__pycache__"]
    if len(integrations) != 1:
        problems.append(
            f"HACS wants one integration in custom_components: {integrations}"
        )
    return problems


def png_size(path: Path) -> tuple[int, int] | None:
    """Return a PNG's width and height, or None if it is not a PNG."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def check_brand(root: Path) -> list[str]:
    """Check the brand icons that HA 2026.3+ and HACS take from brand/."""
    problems: list[str] = []
    for name, size in (("icon.png", (256, 256)), ("icon@2x.png", (512, 512))):
        path = package(root) / "brand" / name
        if not path.is_file():
            problems.append(f"brand/{name} is missing")
        elif (actual := png_size(path)) != size:
            problems.append(f"brand/{name} is {actual}, not a {size} PNG")
    return problems


def check_config_schema(root: Path) -> list[str]:
    """hassfest: an integration with async_setup must define CONFIG_SCHEMA."""
    init = ast.parse((package(root) / "__init__.py").read_text(encoding="utf-8"))
    names = {
        node.name
        for node in init.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assigned = {
        target.id
        for node in init.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    } | {
        node.target.id
        for node in init.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    if {"async_setup", "setup"} & names and "CONFIG_SCHEMA" not in assigned:
        return ["__init__.py has async_setup but no CONFIG_SCHEMA"]
    return []


def check_quality_scale(root: Path) -> list[str]:
    """quality_scale.yaml rates every rule: done, todo, or exempt with a reason."""
    path = package(root) / "quality_scale.yaml"
    if not path.is_file():
        return ["quality_scale.yaml is missing"]
    rules = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rules") or {}
    known = {rule for names in QUALITY_SCALE_RULES.values() for rule in names}
    problems = [
        f"quality scale rule {rule!r} is not rated"
        for rule in sorted(known - set(rules))
    ]
    problems.extend(
        f"{rule!r} is not a quality scale rule" for rule in sorted(set(rules) - known)
    )
    for rule, rating in rules.items():
        status = rating.get("status") if isinstance(rating, dict) else rating
        if status not in {"done", "todo", "exempt"}:
            problems.append(f"quality scale rule {rule!r} has status {status!r}")
        elif status == "exempt" and not (
            isinstance(rating, dict) and rating.get("comment")
        ):
            problems.append(f"quality scale rule {rule!r} is exempt without a comment")
    return problems


# --- translations -------------------------------------------------------------


def config_flow_keys(  # noqa: C901
    root: Path, flow: str = "config"
) -> dict[str, set[str]]:
    """Return the step ids, errors, abort reasons and progress keys a flow uses.

    ``flow`` is ``config`` for the ConfigFlow classes of config_flow.py and
    ``options`` for its OptionsFlow classes.
    """
    module = ast.parse((package(root) / "config_flow.py").read_text(encoding="utf-8"))
    base = "OptionsFlow" if flow == "options" else "ConfigFlow"
    classes = [
        node
        for node in module.body
        if isinstance(node, ast.ClassDef)
        and any(
            (b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")).startswith(
                base
            )
            for b in node.bases
        )
    ]
    tree = ast.Module(body=list(classes), type_ignores=[])
    functions = {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    used: dict[str, set[str]] = {
        "step": set(),
        "external": set(),
        "error": set(),
        "abort": set(),
        "progress": set(),
    }

    def step_ids(
        value: ast.expr, func: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> set[str]:
        """Return a literal, or for a parameter the literals its callers pass."""
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return {value.value}
        if not isinstance(value, ast.Name):
            return set()
        params = [arg.arg for arg in func.args.args]
        if value.id not in params:
            return set()
        index = params.index(value.id) - (1 if params and params[0] == "self" else 0)
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and call_name(node) == func.name:
                if index < len(node.args):
                    arg = node.args[index]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        found.add(arg.value)
                if (kw := keyword(node, value.id)) is not None and isinstance(
                    kw, ast.Constant
                ):
                    found.add(str(kw.value))
        return found

    def error_values(
        value: ast.expr, func: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> set[str]:
        """Return a literal, or for a variable the literals its method returns."""
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return {value.value}
        if not isinstance(value, ast.Name):
            return set()
        found = set()
        for node in ast.walk(func):
            target_value: ast.expr | None = None
            if (isinstance(node, ast.NamedExpr) and node.target.id == value.id) or (
                isinstance(node, ast.Assign)
                and any(
                    isinstance(t, ast.Name) and t.id == value.id for t in node.targets
                )
            ):
                target_value = node.value
            if isinstance(target_value, ast.Await):
                target_value = target_value.value
            if isinstance(target_value, ast.Call) and (
                callee := functions.get(call_name(target_value))
            ):
                found |= literal_returns(callee)
        return found

    for func in functions.values():
        for node in ast.walk(func):
            if isinstance(node, ast.Call):
                name = call_name(node)
                if (
                    name in FLOW_METHODS_WITH_STEP
                    and (value := keyword(node, "step_id")) is not None
                ):
                    ids = step_ids(value, func)
                    used["step"] |= ids
                    if name == "async_external_step":
                        used["external"] |= ids
                if (value := keyword(node, "reason")) is not None:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        used["abort"].add(value.value)
                if (value := keyword(node, "progress_action")) is not None:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        used["progress"].add(value.value)
                if (
                    name == "_abort_if_unique_id_configured"
                    and keyword(node, "reason") is None
                ):
                    used["abort"].add("already_configured")
                if (
                    name == "async_update_reload_and_abort"
                    and keyword(node, "reason") is None
                ):
                    if "async_step_reauth" in functions:
                        used["abort"].add("reauth_successful")
                    if "async_step_reconfigure" in functions:
                        used["abort"].add("reconfigure_successful")
            elif (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(target := node.targets[0], ast.Subscript)
                and isinstance(target.value, ast.Name)
                and target.value.id == "errors"
            ):
                used["error"] |= error_values(node.value, func)
    return used


def check_config_translations(root: Path) -> list[str]:
    """Every key the config flow uses is translated, and every translation is used."""
    problems: list[str] = []
    translations = load_json(package(root) / "translations" / "en.json")
    config = translations.get("config", {})
    used = config_flow_keys(root)
    for flow, flow_steps in (
        ("config", used["step"]),
        ("options", config_flow_keys(root, "options")["step"]),
    ):
        steps = translations.get(flow, {}).get("step", {})
        for step_id in sorted(flow_steps):
            if step_id not in steps:
                problems.append(f"{flow}.step.{step_id} is not translated")
            elif not steps[step_id].get("description") and not steps[step_id].get(
                "title"
            ):
                problems.append(f"{flow}.step.{step_id} has no title or description")
        problems.extend(
            f"{flow}.step.{step_id} is translated but no step uses it"
            for step_id in sorted(set(steps) - flow_steps)
        )
    for section, kind in (("error", "error"), ("abort", "abort")):
        translated = set(config.get(section, {}))
        problems.extend(
            f"config.{section}.{key} is not translated"
            for key in sorted(used[kind] - translated)
        )
        problems.extend(
            f"config.{section}.{key} is translated but not used"
            for key in sorted(translated - used[kind])
        )
    # progress: progress_action keys; an external step may describe itself there too.
    progress = set(config.get("progress", {}))
    problems.extend(
        f"config.progress.{key} is not translated"
        for key in sorted(used["progress"] - progress)
    )
    problems.extend(
        f"config.progress.{key} is translated but not used"
        for key in sorted(progress - used["progress"] - used["external"])
    )
    return problems


def translation_keys_in_code(
    root: Path,
) -> tuple[set[str], set[tuple[str, str]], set[str], set[str]]:
    """Return the literal exception, (platform, key) entity, issue and selector keys."""
    exceptions: set[str] = set()
    entities: set[tuple[str, str]] = set()
    issues: set[str] = set()
    selectors: set[str] = set()
    for path, tree in modules(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                value = keyword(node, "translation_key")
                if not (
                    isinstance(value, ast.Constant) and isinstance(value.value, str)
                ):
                    continue
                if call_name(node) == "async_create_issue":
                    issues.add(value.value)
                elif call_name(node) == "SelectSelectorConfig":
                    selectors.add(value.value)
                elif keyword(node, "translation_domain") is not None:
                    exceptions.add(value.value)
                else:
                    entities.add((path.stem, value.value))
            elif (
                isinstance(node, ast.Assign)
                and any(
                    isinstance(t, ast.Name) and t.id == "_attr_translation_key"
                    for t in node.targets
                )
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                entities.add((path.stem, node.value.value))
    return exceptions, entities, issues, selectors


def check_code_translations(root: Path) -> list[str]:
    """Every literal translation_key in the package has its translation."""
    translations = load_json(package(root) / "translations" / "en.json")
    exceptions, entities, issues, selectors = translation_keys_in_code(root)
    problems = [
        f"exceptions.{key}.message is not translated"
        for key in sorted(exceptions)
        if "message" not in translations.get("exceptions", {}).get(key, {})
    ]
    problems.extend(
        f"entity.{platform}.{key} is not translated"
        for platform, key in sorted(entities)
        if key not in translations.get("entity", {}).get(platform, {})
    )
    problems.extend(
        f"selector.{key}.options is not translated"
        for key in sorted(selectors)
        if not translations.get("selector", {}).get(key, {}).get("options")
    )
    problems.extend(
        f"issues.{key} has no title and description"
        for key in sorted(issues)
        # A fixable issue's words may be its fix flow's, as hassfest allows.
        if "title" not in (found := set(translations.get("issues", {}).get(key, {})))
        or not found & {"description", "fix_flow"}
    )
    return problems


# --- services.yaml ------------------------------------------------------------


def registered_services(root: Path) -> set[str]:
    """Return the actions the package registers in its own domain."""
    constants = string_constants(root)
    services: set[str] = set()
    for _, tree in modules(root):
        for node in ast.walk(tree):
            if (
                not isinstance(node, ast.Call)
                or call_name(node) not in REGISTER_FUNCTIONS
            ):
                continue
            args = [resolve(arg, constants) for arg in node.args]
            for index, value in enumerate(args[:-1]):
                if value == DOMAIN and args[index + 1] is not None:
                    services.add(str(args[index + 1]))
                    break
    return services


def iter_fields(
    fields: dict[str, Any],
    translated: dict[str, Any],
    sections: dict[str, Any],
    where: str,
) -> Iterator[str]:
    """Yield the problems of services.yaml fields (sections included)."""
    for name, field in (fields or {}).items():
        field = field or {}
        if "fields" in field and "selector" not in field:
            if not sections.get(name, {}).get("name"):
                yield f"{where}.sections.{name}.name is not translated"
            yield from iter_fields(field["fields"], translated, sections, where)
            continue
        for part in ("name", "description"):
            if not translated.get(name, {}).get(part):
                yield f"{where}.fields.{name}.{part} is not translated"


def check_services(root: Path) -> list[str]:
    """Every registered action is described in services.yaml and translated."""
    problems: list[str] = []
    registered = registered_services(root)
    path = package(root) / "services.yaml"
    described: dict[str, Any] = {}
    if path.exists():
        described = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    elif registered:
        return [f"services.yaml is missing; registered actions: {sorted(registered)}"]
    translations = load_json(package(root) / "translations" / "en.json")
    translated = translations.get("services", {})
    selectors = translations.get("selector", {})
    problems.extend(
        f"action {name!r} is not in services.yaml"
        for name in sorted(registered - set(described))
    )
    problems.extend(
        f"services.yaml describes {name!r}, which is not registered"
        for name in sorted(set(described) - registered)
    )
    problems.extend(
        f"services.{name} is translated, but not registered"
        for name in sorted(set(translated) - registered)
    )
    for name in sorted(registered):
        texts = translated.get(name)
        where = f"services.{name}"
        if not texts:
            problems.append(f"{where} is not translated")
            continue
        problems.extend(
            f"{where}.{part} is not translated"
            for part in ("name", "description")
            if not texts.get(part)
        )
        spec = described.get(name) or {}
        fields = spec.get("fields") or {}
        problems.extend(
            iter_fields(
                fields, texts.get("fields", {}), texts.get("sections", {}), where
            )
        )
        problems.extend(
            f"{where}.fields.{field} is translated but not in services.yaml"
            for field in sorted(set(texts.get("fields", {})) - set(flatten(fields)))
        )
        for field, options, key in select_translation_keys(fields):
            translated_options = selectors.get(key, {}).get("options", {})
            problems.extend(
                f"selector.{key}.options.{option} (field {field}) is not translated"
                for option in options
                if option not in translated_options
            )
    return problems


def flatten(fields: dict[str, Any]) -> dict[str, Any]:
    """Return the fields with those of sections pulled up."""
    flat: dict[str, Any] = {}
    for name, field in (fields or {}).items():
        field = field or {}
        if "fields" in field and "selector" not in field:
            flat |= flatten(field["fields"])
        else:
            flat[name] = field
    return flat


def select_translation_keys(
    fields: dict[str, Any],
) -> Iterator[tuple[str, list[str], str]]:
    """Yield (field, options, translation_key) of select selectors with a key."""
    for name, field in flatten(fields).items():
        select = (field.get("selector") or {}).get("select") or {}
        if key := select.get("translation_key"):
            options = [
                option["value"] if isinstance(option, dict) else str(option)
                for option in select.get("options", [])
            ]
            yield name, options, key


# --- the tests ----------------------------------------------------------------

CHECKS: dict[str, Callable[[Path], list[str]]] = {
    "manifest": check_manifest,
    "hacs": check_hacs,
    "brand": check_brand,
    "config_schema": check_config_schema,
    "config_translations": check_config_translations,
    "code_translations": check_code_translations,
    "services": check_services,
    "quality_scale": check_quality_scale,
}


@pytest.mark.parametrize("check", CHECKS)
def test_repository_passes(check: str) -> None:
    """The repository passes every check."""
    assert CHECKS[check](ROOT) == []


def test_checks_see_the_code() -> None:
    """The parsers find what is there (so an empty result means something)."""
    used = config_flow_keys(ROOT)
    assert {"user", "authorize", "reauth_confirm", "reconfigure"} <= used["step"]
    assert {"invalid_url", "cannot_connect"} <= used["error"]
    assert {"already_configured", "authorize_timeout"} <= used["abort"]
    assert config_flow_keys(ROOT, "options")["step"] == {"init"}
    exceptions, _, issues, selectors = translation_keys_in_code(ROOT)
    assert "update_failed" in exceptions
    assert "missing_permissions" in issues
    assert "visibility" in selectors


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """Copy the files the checks read; return the copy's root."""
    shutil.copytree(
        package(ROOT),
        package(tmp_path),
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "hacs.json", tmp_path / "hacs.json")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def edit_json(path: Path, change: Callable[[Any], None]) -> None:
    """Change a JSON file in place."""
    data = load_json(path)
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def translations_path(root: Path) -> Path:
    """Return en.json."""
    return package(root) / "translations" / "en.json"


def remove_manifest_key(key: str) -> Callable[[Path], None]:
    """Return a mutation that drops a manifest key."""
    return lambda root: edit_json(
        package(root) / "manifest.json", lambda data: data.pop(key)
    )


def set_manifest(key: str, value: Any) -> Callable[[Path], None]:
    """Return a mutation that sets a manifest key."""
    return lambda root: edit_json(
        package(root) / "manifest.json", lambda data: data.__setitem__(key, value)
    )


def remove_translation(*keys: str) -> Callable[[Path], None]:
    """Return a mutation that drops translations[keys[0]]...[keys[-1]]."""

    def change(data: Any) -> None:
        for key in keys[:-1]:
            data = data[key]
        data.pop(keys[-1])

    return lambda root: edit_json(translations_path(root), change)


def add_translation(value: Any, *keys: str) -> Callable[[Path], None]:
    """Return a mutation that adds an unused translation."""

    def change(data: Any) -> None:
        for key in keys[:-1]:
            data = data.setdefault(key, {})
        data[keys[-1]] = value

    return lambda root: edit_json(translations_path(root), change)


def first_service_field(root: Path) -> tuple[str, str] | None:
    """Return a registered action and one of its fields, if any."""
    path = package(root) / "services.yaml"
    for name in sorted(registered_services(root)):
        if path.exists():
            fields = (
                (yaml.safe_load(path.read_text()) or {}).get(name, {}).get("fields")
            )
            if fields:
                return name, next(iter(flatten(fields)))
    return None


def remove_service_description(root: Path) -> None:
    """Drop the translated description of the first registered action."""
    name = min(registered_services(root))
    edit_json(
        translations_path(root), lambda data: data["services"][name].pop("description")
    )


def remove_field_description(root: Path) -> None:
    """Drop the translated description of one field of a registered action."""
    found = first_service_field(root)
    assert found is not None
    name, field = found
    edit_json(
        translations_path(root),
        lambda data: data["services"][name]["fields"][field].pop("description"),
    )


def remove_services_yaml_entry(root: Path) -> None:
    """Drop the first registered action from services.yaml."""
    path = package(root) / "services.yaml"
    data = yaml.safe_load(path.read_text())
    data.pop(min(registered_services(root)))
    path.write_text(yaml.safe_dump(data))


def unsort_manifest(root: Path) -> None:
    """Move version to the front."""
    path = package(root) / "manifest.json"
    data = load_json(path)
    path.write_text(json.dumps({"version": data.pop("version"), **data}))


def drop_config_schema(root: Path) -> None:
    """Remove CONFIG_SCHEMA from __init__.py."""
    path = package(root) / "__init__.py"
    text = path.read_text()
    assert "CONFIG_SCHEMA = " in text
    path.write_text(text.replace("CONFIG_SCHEMA = ", "_NOT_THE_SCHEMA = "))


def shrink_icon(root: Path) -> None:
    """Replace icon@2x.png by the 256 px icon."""
    brand = package(root) / "brand"
    shutil.copy(brand / "icon.png", brand / "icon@2x.png")


def drop_hacs_name(root: Path) -> None:
    """Remove hacs.json's name."""
    edit_json(root / "hacs.json", lambda data: data.pop("name"))


def add_hacs_key(root: Path) -> None:
    """Add a key HACS does not know."""
    edit_json(root / "hacs.json", lambda data: data.__setitem__("domains", ["notify"]))


def bad_hacs_version(root: Path) -> None:
    """Make the minimum Home Assistant version unreadable."""
    edit_json(
        root / "hacs.json", lambda data: data.__setitem__("homeassistant", "soon")
    )


def use_new_error(root: Path) -> None:
    """Use an error key the translations lack."""
    path = package(root) / "config_flow.py"
    text = path.read_text()
    assert 'errors[CONF_URL] = "invalid_url"' in text
    path.write_text(
        text.replace('errors[CONF_URL] = "invalid_url"', 'errors[CONF_URL] = "bad_url"')
    )


def use_new_exception(root: Path) -> None:
    """Raise an exception with an untranslated key."""
    path = package(root) / "coordinator.py"
    text = path.read_text()
    assert 'translation_key="update_failed"' in text
    path.write_text(
        text.replace(
            'translation_key="update_failed"', 'translation_key="brand_new"', 1
        )
    )


def edit_quality_scale(
    change: Callable[[dict[str, Any]], None],
) -> Callable[[Path], None]:
    """Return a mutation of quality_scale.yaml's rules."""

    def mutate(root: Path) -> None:
        path = package(root) / "quality_scale.yaml"
        data = yaml.safe_load(path.read_text())
        change(data["rules"])
        path.write_text(yaml.safe_dump(data))

    return mutate


MUTATIONS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "quality-scale-rule-missing": (
        "quality_scale",
        edit_quality_scale(lambda rules: rules.pop("diagnostics")),
        "'diagnostics' is not rated",
    ),
    "quality-scale-exempt-without-reason": (
        "quality_scale",
        edit_quality_scale(lambda rules: rules.__setitem__("discovery", "exempt")),
        "without a comment",
    ),
    "manifest-no-version": ("manifest", remove_manifest_key("version"), "'version'"),
    "manifest-no-codeowners": (
        "manifest",
        remove_manifest_key("codeowners"),
        "codeowners",
    ),
    "manifest-no-iot_class": (
        "manifest",
        remove_manifest_key("iot_class"),
        "iot_class",
    ),
    "manifest-no-issue_tracker": (
        "manifest",
        remove_manifest_key("issue_tracker"),
        "issue_tracker",
    ),
    "manifest-bad-version": ("manifest", set_manifest("version", "one"), "version"),
    "manifest-bad-iot_class": (
        "manifest",
        set_manifest("iot_class", "cloud"),
        "iot_class",
    ),
    "manifest-unknown-key": (
        "manifest",
        set_manifest("homeassistant", "2026.9.0"),
        "unknown",
    ),
    "manifest-unsorted": ("manifest", unsort_manifest, "sorted"),
    "hacs-no-name": ("hacs", drop_hacs_name, "name"),
    "hacs-unknown-key": ("hacs", add_hacs_key, "domains"),
    "hacs-bad-version": ("hacs", bad_hacs_version, "homeassistant"),
    "brand-small-2x": ("brand", shrink_icon, "icon@2x"),
    "no-config-schema": ("config_schema", drop_config_schema, "CONFIG_SCHEMA"),
    "step-untranslated": (
        "config_translations",
        remove_translation("config", "step", "user"),
        "config.step.user",
    ),
    "error-untranslated": (
        "config_translations",
        remove_translation("config", "error", "invalid_url"),
        "config.error.invalid_url",
    ),
    "returned-error-untranslated": (
        "config_translations",
        remove_translation("config", "error", "not_misskey"),
        "config.error.not_misskey",
    ),
    "abort-untranslated": (
        "config_translations",
        remove_translation("config", "abort", "authorize_timeout"),
        "config.abort.authorize_timeout",
    ),
    "implicit-abort-untranslated": (
        "config_translations",
        remove_translation("config", "abort", "already_configured"),
        "config.abort.already_configured",
    ),
    "unused-error": (
        "config_translations",
        add_translation("Never shown", "config", "error", "stale"),
        "config.error.stale",
    ),
    "unused-step": (
        "config_translations",
        add_translation({"title": "Old"}, "config", "step", "old_step"),
        "config.step.old_step",
    ),
    "options-step-untranslated": (
        "config_translations",
        remove_translation("options", "step", "init"),
        "options.step.init",
    ),
    "new-error-in-code": ("config_translations", use_new_error, "config.error.bad_url"),
    "exception-untranslated": (
        "code_translations",
        remove_translation("exceptions", "update_failed"),
        "exceptions.update_failed",
    ),
    "new-exception-in-code": (
        "code_translations",
        use_new_exception,
        "exceptions.brand_new",
    ),
    "issue-untranslated": (
        "code_translations",
        remove_translation("issues", "missing_permissions"),
        "issues.missing_permissions",
    ),
    "options-selector-untranslated": (
        "code_translations",
        remove_translation("selector", "visibility"),
        "selector.visibility",
    ),
}

SERVICE_MUTATIONS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "service-description-untranslated": (
        "services",
        remove_service_description,
        "description",
    ),
    "service-field-untranslated": ("services", remove_field_description, "fields."),
    "service-not-in-services-yaml": (
        "services",
        remove_services_yaml_entry,
        "not in services.yaml",
    ),
}


@pytest.mark.parametrize("mutation", [*MUTATIONS, *SERVICE_MUTATIONS])
def test_checks_notice_a_removed_key(copy: Path, mutation: str) -> None:
    """Each check reports a copy with something removed or broken.

    Compared with the copy's problems before the change, so a problem of work in
    progress elsewhere does not hide what this test is about.
    """
    check, mutate, expected = (MUTATIONS | SERVICE_MUTATIONS)[mutation]
    if mutation in SERVICE_MUTATIONS and not registered_services(copy):
        pytest.skip("the integration registers no action (yet)")
    before = set(CHECKS[check](copy))
    mutate(copy)
    problems = set(CHECKS[check](copy)) - before
    assert any(expected in problem for problem in problems), problems


def test_services_yaml_may_be_absent_without_actions(tmp_path: Path) -> None:
    """No services.yaml is fine while nothing is registered; not once something is."""
    pkg = package(tmp_path)
    (pkg / "translations").mkdir(parents=True)
    (pkg / "translations" / "en.json").write_text("{}")
    (pkg / "__init__.py").write_text("DOMAIN = 'misskey'\n")
    assert check_services(tmp_path) == []
    (pkg / "services.py").write_text(
        "def setup(hass):\n    hass.services.async_register(DOMAIN, 'shout', handler)\n"
    )
    assert check_services(tmp_path) == [
        "services.yaml is missing; registered actions: ['shout']"
    ]
