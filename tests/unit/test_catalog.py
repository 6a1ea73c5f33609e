"""flambe's component tags resolve without importing their packages first, and the catalog is complete."""

import subprocess
import sys
import textwrap

from flambe.compile.catalog import CATALOG, TAG_MODULES


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_catalog_lists_exactly_the_registered_tags_of_each_package():
    out = _run(f"""
        import importlib, json
        from flambe.compile.registry import DEFAULT_REGISTRY
        modules = {sorted(CATALOG)!r}
        for m in modules:
            importlib.import_module(m)
        found = {{}}
        for tag, entry in DEFAULT_REGISTRY._tags.items():
            owner = [m for m in modules if entry.cls.__module__ == m or entry.cls.__module__.startswith(m + '.')]
            if owner:
                found.setdefault(owner[0], []).append(tag)
        print(json.dumps(found))
    """)
    import json
    found = {module: sorted(tags) for module, tags in json.loads(out).items()}
    expected = {module: sorted(tags) for module, tags in CATALOG.items() if tags}
    assert found == expected


def test_a_component_tag_imports_its_package_on_first_use_only():
    out = _run("""
        import sys
        import flambe.compile
        from flambe.compile import yaml
        before = 'flambe.learn' in sys.modules or 'torch' in sys.modules
        schema = yaml.load("!Accuracy {}")
        print(before, type(schema()).__module__, 'flambe.learn' in sys.modules)
    """)
    imported_before, module, learn_imported = out.split()
    assert imported_before == "False" and learn_imported == "False"
    assert module.startswith("flambe.metric")


def test_catalog_tags_are_suggested_for_typos():
    import pytest

    from flambe.compile import TagError, yaml
    with pytest.raises(TagError) as info:
        yaml.load("!Trainr {}")
    assert "!Trainer" in str(info.value)


def test_every_catalog_tag_resolves_to_a_class_of_its_module():
    from flambe.compile.registry import current_registry
    for tag, module in TAG_MODULES.items():
        cls = current_registry().lookup(tag).cls
        assert cls.__module__.startswith(module), (tag, cls.__module__)
