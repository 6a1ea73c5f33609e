"""Unit tests for flambe.compile.registry: tags, namespaces, aliases, factories and lazy namespaces."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from flambe.compile import (
    Component,
    Registry,
    TagError,
    alias,
    current_registry,
    register,
    registrable_factory,
    registration_context,
    use_registry,
    yaml,
)
from flambe.compile.registry import DEFAULT_REGISTRY

# pytest imports this file as a top-level module (no __init__.py), so its namespace is its name.
NS = __name__.split(".")[0]


class RegWidget(Component):
    def __init__(self, size: int = 3) -> None:
        self.size = size


@alias("reg_new_name")
@alias("reg_old_name")
class RegAliased(Component):
    def __init__(self, value: int = 0) -> None:
        self.value = value


class RegFactoryBase(Component):
    def __init__(self, x: int = 0) -> None:
        self.x = x

    @registrable_factory
    @classmethod
    def from_double(cls, half: int) -> "RegFactoryBase":
        return cls(x=2 * half)


class RegFactoryChild(RegFactoryBase):
    pass


class RegPlainPoint:
    """Not a Registrable: registered with register()."""

    def __init__(self, x: int = 0, y: int = 0) -> None:
        self.x = x
        self.y = y


register(RegPlainPoint, "reg_point")


with registration_context("regctx"):
    class RegInContext(Component):
        def __init__(self, n: int = 1) -> None:
            self.n = n


# ---------------------------------------------------------------------- auto-registration
def test_component_subclass_registered_under_module_namespace():
    entry = current_registry().lookup(f"{NS}.RegWidget")
    assert entry.cls is RegWidget
    assert entry.factory is None
    assert current_registry().default_tag(RegWidget) == f"{NS}.RegWidget"
    assert current_registry().namespace_of(RegWidget) == NS


def test_bare_name_resolves_when_unambiguous():
    assert current_registry().lookup("RegWidget").cls is RegWidget
    built = yaml.load("!RegWidget {size: 7}")()
    assert type(built) is RegWidget
    assert built.size == 7


def test_namespaced_tag_loads():
    built = yaml.load(f"!{NS}.RegWidget {{size: 4}}")()
    assert isinstance(built, RegWidget)
    assert built.size == 4


def test_flambe_classes_have_no_namespace():
    from flambe.compile.link import Link
    # flambe's own classes: bare tag only, no namespace
    assert current_registry().namespace_of(Link) is None
    assert current_registry().lookup("@").cls is Link


def test_should_register_false_is_not_registered():
    class RegHidden(Component, should_register=False):
        pass

    with pytest.raises(TagError):
        current_registry().lookup("RegHidden")


def test_tag_override_and_tag_namespace():
    with use_registry():
        class RegOverridden(Component, tag_override="overridden_tag", tag_namespace="myns"):
            pass

        assert current_registry().lookup("myns.overridden_tag").cls is RegOverridden
        assert current_registry().default_tag(RegOverridden) == "myns.overridden_tag"


# ---------------------------------------------------------------------- alias
def test_alias_top_most_is_default_dump_tag():
    assert current_registry().default_tag(RegAliased) == f"{NS}.reg_new_name"
    text = yaml.dump(RegAliased(value=5))
    assert text.startswith(f"!{NS}.reg_new_name")


def test_both_alias_tags_and_class_name_load():
    for tag in ("reg_old_name", "reg_new_name", f"{NS}.reg_old_name", f"{NS}.reg_new_name", "RegAliased"):
        obj = yaml.load(f"!{tag} {{value: 9}}")()
        assert type(obj) is RegAliased, tag
        assert obj.value == 9


# ---------------------------------------------------------------------- register() for plain classes
def test_register_plain_class_mapping_becomes_kwargs():
    point = yaml.load("!reg_point {x: 3, y: 4}")
    # plain classes are built at load time (not delayed)
    assert type(point) is RegPlainPoint
    assert (point.x, point.y) == (3, 4)


def test_register_plain_class_namespaced_and_dump_roundtrip():
    point = yaml.load(f"!{NS}.reg_point {{x: 1, y: 2}}")
    assert (point.x, point.y) == (1, 2)
    text = yaml.dump(point)
    assert f"!{NS}.reg_point" in text
    again = yaml.load(text)
    assert (again.x, again.y) == (1, 2)


def test_register_returns_class():
    class RegTmp:
        pass

    with use_registry():
        assert register(RegTmp, "reg_tmp_tag") is RegTmp


def test_register_plain_class_inside_component():
    class RegHolder(Component):
        def __init__(self, point) -> None:
            self.point = point

    obj = yaml.load("!RegHolder\npoint: !reg_point {x: 5}\n")()
    assert obj.point.x == 5 and obj.point.y == 0


# ---------------------------------------------------------------------- registrable_factory
def test_registrable_factory_tag():
    schema = yaml.load("!RegFactoryBase.from_double {half: 21}")
    assert schema.factory_name == "from_double"
    obj = schema()
    assert type(obj) is RegFactoryBase
    assert obj.x == 42


def test_registrable_factory_inherited_by_subclass():
    obj = yaml.load(f"!{NS}.RegFactoryChild.from_double {{half: 5}}")()
    assert type(obj) is RegFactoryChild
    assert obj.x == 10


def test_registrable_factory_still_a_classmethod():
    assert RegFactoryChild.from_double(3).x == 6
    assert type(RegFactoryChild.from_double(3)) is RegFactoryChild


def test_unknown_factory_is_unknown_tag():
    with pytest.raises(TagError):
        yaml.load("!RegFactoryBase.not_a_factory {half: 1}")


def test_non_factory_classmethod_is_not_a_tag():
    class RegWithClassmethod(Component):
        @classmethod
        def helper(cls):
            return cls()

    with pytest.raises(TagError):
        yaml.load("!RegWithClassmethod.helper")


# ---------------------------------------------------------------------- registration_context
def test_registration_context_sets_namespace():
    assert current_registry().default_tag(RegInContext) == "regctx.RegInContext"
    obj = yaml.load("!regctx.RegInContext {n: 8}")()
    assert type(obj) is RegInContext and obj.n == 8
    with pytest.raises(TagError):
        current_registry().lookup(f"{NS}.RegInContext")


def test_registration_context_is_restored_after_block():
    with use_registry():
        with registration_context("tmpctx"):
            class RegCtxInner(Component):
                pass

        class RegCtxOuter(Component):
            pass

        assert current_registry().default_tag(RegCtxInner) == "tmpctx.RegCtxInner"
        assert current_registry().default_tag(RegCtxOuter) == f"{NS}.RegCtxOuter"


# ---------------------------------------------------------------------- use_registry
def test_use_registry_isolates_classes():
    with use_registry() as reg:
        class RegIsolated(Component):
            def __init__(self, v: int = 1) -> None:
                self.v = v

        assert current_registry() is reg
        assert yaml.load("!RegIsolated {v: 2}")().v == 2
        # the default registry is still visible through the parent
        assert reg.lookup("RegWidget").cls is RegWidget

    assert current_registry() is DEFAULT_REGISTRY
    with pytest.raises(TagError):
        DEFAULT_REGISTRY.lookup("RegIsolated")
    with pytest.raises(TagError):
        yaml.load("!RegIsolated {v: 2}")


def test_explicit_registry_passed_to_load():
    reg = Registry(parent=DEFAULT_REGISTRY)
    with use_registry(reg):
        class RegExplicit(Component):
            pass

    assert yaml.load("!RegExplicit {}", registry=reg).component_subclass is RegExplicit
    with pytest.raises(TagError):
        yaml.load("!RegExplicit {}")


# ---------------------------------------------------------------------- errors
def test_unknown_tag_did_you_mean():
    with pytest.raises(TagError) as info:
        yaml.load("!RegWidgett {size: 1}")
    err = info.value
    assert "RegWidgett" in err.message
    assert err.hint is not None and "did you mean" in err.hint
    assert "RegWidget" in err.hint
    assert "did you mean" in str(err)


def test_unknown_tag_has_location():
    with pytest.raises(TagError) as info:
        yaml.load("a: 1\nb: !NoSuchThingAtAll_xyz {}\n")
    assert info.value.location is not None
    assert info.value.location.line == 2
    assert info.value.location.column == 4


def _twin_in(namespace: str) -> type:
    with registration_context(namespace):
        class RegTwin(Component):
            pass
    return RegTwin


def _twin_in_other_scope(namespace: str) -> type:
    with registration_context(namespace):
        class RegTwin(Component):
            pass
    return RegTwin


def test_ambiguous_bare_tag_lists_both():
    with use_registry():
        first = _twin_in("amb_one")
        second = _twin_in_other_scope("amb_two")

        with pytest.raises(TagError) as info:
            current_registry().lookup("RegTwin")
        text = str(info.value)
        assert "amb_one.RegTwin" in text
        assert "amb_two.RegTwin" in text
        assert "ambiguous" in text
        # the namespaced tags still work
        assert current_registry().lookup("amb_one.RegTwin").cls is first
        assert current_registry().lookup("amb_two.RegTwin").cls is second
        with pytest.raises(TagError):
            yaml.load("!RegTwin {}")


def test_registering_two_classes_under_one_full_tag_fails():
    from flambe.compile import RegistrationError
    with use_registry():
        class RegDupA(Component, tag_override="reg_dup", tag_namespace="dupns"):
            pass
        with pytest.raises(RegistrationError):
            class RegDupB(Component, tag_override="reg_dup", tag_namespace="dupns"):
                pass
        assert current_registry().lookup("dupns.reg_dup").cls is RegDupA


def test_redefining_a_class_replaces_it():
    with use_registry():
        first = _twin_in("redef")
        second = _twin_in("redef")  # same module and qualname: a re-run of the same definition
        assert first is not second
        assert current_registry().lookup("redef.RegTwin").cls is second


# ---------------------------------------------------------------------- lazy namespaces
def test_import_flambe_compile_does_not_import_torch_or_ray():
    code = textwrap.dedent("""
        import sys
        import flambe.compile
        from flambe.compile import yaml, Component
        heavy = sorted(m for m in ('torch', 'ray', 'pandas', 'boto3') if m in sys.modules)
        print(','.join(heavy) or 'CLEAN')
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "CLEAN"


def test_torch_tags_resolve_lazily():
    import torch

    linear = yaml.load("!torch.Linear {in_features: 3, out_features: 2}")()
    assert isinstance(linear, torch.nn.Linear)
    assert isinstance(linear, Component)
    assert linear.weight.shape == (2, 3)

    adam_cls = current_registry().lookup("torch.Adam").cls
    assert issubclass(adam_cls, torch.optim.Adam)
    step_cls = current_registry().lookup("torch.StepLR").cls
    assert issubclass(step_cls, torch.optim.lr_scheduler.StepLR)


def test_torch_tag_is_the_same_class_each_time():
    a = current_registry().lookup("torch.Linear").cls
    b = current_registry().lookup("torch.Linear").cls
    assert a is b


def test_torch_optimizer_and_scheduler_from_yaml():
    import torch

    class RegTorchHolder(Component):
        def __init__(self, model, opt, sched) -> None:
            self.model = model
            self.opt = opt
            self.sched = sched

    text = textwrap.dedent("""
        !RegTorchHolder
        model: !torch.Linear {in_features: 2, out_features: 1}
        opt: !torch.SGD
          params: [!@ model.weight, !@ model.bias]
          lr: 0.5
        sched: !torch.StepLR
          optimizer: !@ opt
          step_size: 1
          gamma: 0.1
    """)
    obj = yaml.load(text)()
    assert isinstance(obj.opt, torch.optim.SGD)
    assert obj.opt.param_groups[0]["params"][0] is obj.model.weight
    assert isinstance(obj.sched, torch.optim.lr_scheduler.StepLR)
    obj.opt.step()
    obj.sched.step()
    assert obj.opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_unknown_torch_tag_suggests():
    with pytest.raises(TagError) as info:
        yaml.load("!torch.Linearr {in_features: 1, out_features: 1}")
    assert "did you mean" in (info.value.hint or "")
    assert "torch.Linear" in info.value.hint


@pytest.mark.parametrize("prefix", ["ray", "tune"])
def test_ray_and_tune_ascha_scheduler(prefix):
    from ray.tune.schedulers import ASHAScheduler

    cls = current_registry().lookup(f"{prefix}.ASHAScheduler").cls
    assert issubclass(cls, ASHAScheduler)
    obj = yaml.load(f"!{prefix}.ASHAScheduler {{max_t: 10, grace_period: 1}}")()
    assert isinstance(obj, ASHAScheduler)
    assert isinstance(obj, Component)


def test_ray_and_tune_are_the_same_class():
    assert current_registry().lookup("ray.ASHAScheduler").cls is current_registry().lookup("tune.ASHAScheduler").cls
