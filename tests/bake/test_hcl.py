"""HCL language cases transcribed from buildx's bake/hcl_test.go (test names cited)."""

from __future__ import annotations

import pytest
from bakehelp import hcl, parse, target

from bale.errors import BakeError


def test_basic_with_inherits() -> None:
    """TestHCLBasic."""
    d = hcl("""
group "default" { targets = ["db", "webapp"] }
target "db" {
  context = "./db"
  tags = ["docker.io/tonistiigi/db"]
}
target "webapp" {
  context = "./dir"
  dockerfile = "Dockerfile-alternate"
  args = { buildno = "123" }
}
target "cross" { platforms = ["linux/amd64", "linux/arm64"] }
target "webapp-plus" {
  inherits = ["webapp", "cross"]
  args = { IAMCROSS = "true" }
}""")
    assert [g.name for g in d.groups] == ["default"]
    assert d.groups[0].targets == ["db", "webapp"]
    assert [t.name for t in d.targets] == ["db", "webapp", "cross", "webapp-plus"]
    assert target(d, "db").context == "./db"
    assert target(d, "webapp").args == {"buildno": "123"}
    assert target(d, "cross").platforms == ["linux/amd64", "linux/arm64"]
    assert target(d, "webapp-plus").args == {"IAMCROSS": "true"}


def test_functions_and_user_functions() -> None:
    """TestHCLWithFunctions, TestHCLWithUserDefinedFunctions."""
    d = hcl("""
function "increment" {
  params = [number]
  result = number + 1
}
target "webapp" { args = { a = "${add(123, 1)}", b = "${increment(123)}" } }""")
    assert target(d, "webapp").args == {"a": "124", "b": "124"}


def test_variables_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestHCLWithVariables, TestHCLVarsWithVars."""
    text = """
variable "FOO" { default = upper("${BASE}def") }
variable "BAR" { default = "-${FOO}-" }
variable "BASE" { default = "abc" }
target "app" { args = { v1 = "pre-${BAR}" } }"""
    assert target(hcl(text), "app").args == {"v1": "pre--ABCDEF-"}
    monkeypatch.setenv("BASE", "new")
    assert target(hcl(text), "app").args == {"v1": "pre--NEWDEF-"}


def test_typed_variables_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestHCLTypedVariables."""
    text = """
variable "FOO" { default = 3 }
variable "IS_FOO" { default = true }
target "app" {
  args = {
    v1 = FOO > 5 ? "higher" : "lower"
    v2 = IS_FOO ? "yes" : "no"
  }
}"""
    assert target(hcl(text), "app").args == {"v1": "lower", "v2": "yes"}
    monkeypatch.setenv("FOO", "5.1")
    monkeypatch.setenv("IS_FOO", "0")
    assert target(hcl(text), "app").args == {"v1": "higher", "v2": "no"}
    monkeypatch.setenv("FOO", "NaN")
    with pytest.raises(BakeError, match="failed to parse FOO as number"):
        hcl(text)


def test_null_variable_drops_arg(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestHCLNullVariables: a null arg means the Dockerfile default."""
    text = 'variable "FOO" { default = null }\ntarget "default" { args = { foo = FOO } }'
    assert target(hcl(text), "default").args == {"foo": None}
    monkeypatch.setenv("FOO", "bar")
    assert target(hcl(text), "default").args == {"foo": "bar"}


@pytest.mark.parametrize(
    "kind",
    [
        "any",
        "string",
        "number",
        "bool",
        "list(string)",
        "set(string)",
        "map(string)",
        "tuple([string])",
        "object({val: string})",
    ],
)
def test_typed_valueless_variable_is_null(kind: str) -> None:
    """TestHCLTypedValuelessVariables."""
    d = hcl(
        f'variable "FOO" {{ type = {kind} }}\ntarget "default" {{ args = {{ foo = equal(FOO, null) }} }}'
    )
    assert target(d, "default").args == {"foo": "true"}


def test_variable_cycle() -> None:
    """TestHCLVariableCycle."""
    with pytest.raises(BakeError, match="variable cycle not allowed"):
        hcl('variable "FOO" { default = BAR }\nvariable "BAR" { default = FOO }\ntarget "app" {}')


def test_global_attrs_not_overridden_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestHCLAttrs."""
    monkeypatch.setenv("FOO", "bar")
    d = hcl('FOO="abc"\nBAR="attr-${FOO}def"\ntarget "app" { args = { "v1": BAR } }')
    assert target(d, "app").args == {"v1": "attr-abcdef"}


def test_target_attribute_references() -> None:
    """TestHCLTargetAttrs, TestHCLTargetGlobal, TestHCLTargetAttrName."""
    d = hcl("""
target "foo" {
  dockerfile = "xxx"
  context = target.bar.context
  target = target.foo.dockerfile
}
target "bar" {
  dockerfile = target.foo.dockerfile
  context = "yyy"
  target = target.bar.context
}
x = target.foo.dockerfile
target "baz" {
  dockerfile = x
  tags = [target.baz.name]
}""")
    foo, bar = target(d, "foo"), target(d, "bar")
    assert (foo.dockerfile, foo.context, foo.target) == ("xxx", "yyy", "xxx")
    assert (bar.dockerfile, bar.context, bar.target) == ("xxx", "yyy", "yyy")
    assert target(d, "baz").dockerfile == "xxx"
    assert target(d, "baz").tags == ["baz"]


def test_capsule_attributes() -> None:
    """TestHCLAttrsCapsuleType: objects and CSV strings for composable attributes."""
    d = hcl("""
target "app" {
  attest = [{ type = "provenance", mode = "max" }, "type=sbom,disabled=true,generator=foo,\\"ENV1=bar,baz\\",ENV2=hello"]
  cache-from = [{ type = "registry", ref = "user/app:cache" }, "type=local,src=path/to/cache"]
  cache-to = [{ type = "local", dest = "path/to/cache" }]
  output = [{ type = "oci", dest = "../out.tar" }, "type=local,dest=../out"]
  secret = [{ id = "mysecret", src = "/local/secret" }, { id = "mysecret2", env = "TOKEN" }]
  ssh = [{ id = "default" }, { id = "key", paths = ["path/to/key"] }]
}""")
    t = target(d, "app")
    assert sorted(a.string() for a in t.attest) == [
        "type=provenance,mode=max",
        'type=sbom,disabled=true,"ENV1=bar,baz",ENV2=hello,generator=foo',
    ]
    assert sorted(o.string() for o in t.output) == [
        "type=local,dest=../out",
        "type=oci,dest=../out.tar",
    ]
    assert sorted(c.string() for c in t.cache_from) == [
        "type=local,src=path/to/cache",
        "user/app:cache",
    ]
    assert [c.string() for c in t.cache_to] == ["type=local,dest=path/to/cache"]
    assert sorted(s.string() for s in t.secret) == [
        "id=mysecret,src=/local/secret",
        "id=mysecret2,env=TOKEN",
    ]
    assert sorted(s.string() for s in t.ssh) == ["default", "key=path/to/key"]


def test_capsule_object_references() -> None:
    """TestHCLAttrsCapsuleType_ObjectVars."""
    d = hcl("""
variable "foo" { default = "bar" }
target "app" {
  cache-from = [{ type = "registry", ref = "user/app:cache" }, "type=local,src=path/to/cache"]
  cache-to = [ target.app.cache-from[0] ]
  output = [{ type = "oci", dest = "../out.tar" }, "type=local,dest=../out"]
  ssh = [{ id = "key", paths = ["path/to/${target.app.output[0].type}"] }]
}
target "web" {
  output = [ "type=oci,dest=../${foo}.tar" ]
  secret = [{ id = target.app.output[0].type, src = "/${target.app.cache-from[1].type}/secret" }]
}""")
    assert [c.string() for c in target(d, "app").cache_to] == ["user/app:cache"]
    assert [s.string() for s in target(d, "app").ssh] == ["key=path/to/oci"]
    assert [o.string() for o in target(d, "web").output] == ["type=oci,dest=../bar.tar"]
    assert [s.string() for s in target(d, "web").secret] == ["id=oci,src=/local/secret"]


def test_multi_file_vars_and_attrs(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestHCLMultiFileAttrs: a later global attribute overrides a variable's default."""
    files = (
        (
            "c1.hcl",
            'variable "FOO" { default = "abc" }\ntarget "app" { args = { v1 = "pre-${FOO}" } }',
        ),
        ("c2.hcl", 'FOO="def"'),
    )
    assert target(parse(*files), "app").args == {"v1": "pre-def"}
    monkeypatch.setenv("FOO", "ghi")
    assert target(parse(*files), "app").args == {"v1": "pre-ghi"}


def test_duplicate_target_merges() -> None:
    """TestHCLDuplicateTarget."""
    d = hcl('target "app" { dockerfile = "x" }\ntarget "app" { dockerfile = "y" }')
    assert [t.name for t in d.targets] == ["app"]
    assert target(d, "app").dockerfile == "y"


def test_rename_requires_matrix_and_groups_refuse() -> None:
    """TestHCLRenameTarget, TestHCLRenameGroup."""
    with pytest.raises(BakeError, match="requires matrix"):
        hcl('target "abc" {\n  name = "xyz"\n}')
    with pytest.raises(BakeError, match="not supported"):
        hcl('group "foo" {\n  name = "bar"\n  targets = ["x"]\n}')
    with pytest.raises(BakeError, match="not supported"):
        hcl('group "foo" {\n  matrix = { name = ["x"] }\n  targets = []\n}')


def test_rename_split_makes_group() -> None:
    """TestHCLRenameSplit."""
    d = hcl(
        'target "x" {\n name = "y"\n matrix = {}\n dockerfile = "foo"\n}\ntarget "x" {\n name = "z"\n matrix = {}\n dockerfile = "bar"\n}'
    )
    assert [(t.name, t.dockerfile) for t in d.targets] == [("y", "foo"), ("z", "bar")]
    assert [(g.name, g.targets) for g in d.groups] == [("x", ["y", "z"])]


def test_matrix_basic_lists_and_maps() -> None:
    """TestHCLMatrixBasic, TestHCLMatrixLists, TestHCLMatrixMaps."""
    d = hcl(
        'target "default" {\n matrix = { foo = ["x", "y"] }\n name = foo\n dockerfile = "${foo}.Dockerfile"\n}'
    )
    assert [(t.name, t.dockerfile) for t in d.targets] == [
        ("x", "x.Dockerfile"),
        ("y", "y.Dockerfile"),
    ]
    assert [(g.name, g.targets) for g in d.groups] == [("default", ["x", "y"])]
    d = hcl(
        'target "foo" {\n matrix = { aa = [["aa", "bb"], ["cc", "dd"]] }\n name = aa[0]\n args = { target = "val${aa[1]}" }\n}'
    )
    assert [(t.name, t.args) for t in d.targets] == [
        ("aa", {"target": "valbb"}),
        ("cc", {"target": "valdd"}),
    ]
    d = hcl(
        'target "foo" {\n matrix = { aa = [{ foo = "aa", bar = "bb" }, { foo = "cc", bar = "dd" }] }\n name = aa.foo\n args = { target = "val${aa.bar}" }\n}'
    )
    assert [(t.name, t.args) for t in d.targets] == [
        ("aa", {"target": "valbb"}),
        ("cc", {"target": "valdd"}),
    ]


def test_matrix_multiple_keys() -> None:
    """TestHCLMatrixMultipleKeys (buildx's order is unspecified; bale's is definition order)."""
    d = hcl(
        'target "default" {\n matrix = {\n foo = ["a"]\n bar = ["b", "c"]\n baz = ["d", "e", "f"]\n }\n name = "${foo}-${bar}-${baz}"\n}'
    )
    assert sorted(t.name for t in d.targets) == [
        "a-b-d",
        "a-b-e",
        "a-b-f",
        "a-c-d",
        "a-c-e",
        "a-c-f",
    ]


def test_matrix_errors() -> None:
    """TestHCLMatrixDuplicateNames, TestHCLMatrixBadTypes."""
    with pytest.raises(BakeError, match='duplicate name "c"'):
        hcl('target "default" {\n matrix = { foo = ["a", "b"] }\n name = "c"\n}')
    for bad in ('"test"', '["test"]', '{ a = "b" }'):
        with pytest.raises(BakeError):
            hcl(f'target "default" {{\n matrix = {bad}\n}}')


def test_matrix_args_override_variable() -> None:
    """TestHCLMatrixArgsOverride."""
    d = hcl(
        'variable "ABC" { default = "def" }\ntarget "bar" {\n matrix = { aa = split(",", ABC) }\n name = "bar-${aa}"\n args = { foo = aa }\n}',
        variables={"ABC": "11,22,33"},
    )
    assert [(t.name, t.args) for t in d.targets] == [
        ("bar-11", {"foo": "11"}),
        ("bar-22", {"foo": "22"}),
        ("bar-33", {"foo": "33"}),
    ]


def test_matrix_product_is_bounded() -> None:
    """A matrix may not expand without bound (documented limit)."""
    with pytest.raises(BakeError, match="more than 10000"):
        hcl(
            'target "t" {\n matrix = { a = range(100), b = range(100), c = range(100) }\n name = "t-${a}-${b}-${c}"\n}'
        )


def test_indexof_and_conditional_tags() -> None:
    """TestHCLIndexOfFunc."""
    d = hcl("""
variable "APP_VERSIONS" { default = ["1.42.4", "1.42.3"] }
target "default" {
  args = { APP_VERSION = app_version }
  matrix = { app_version = APP_VERSIONS }
  name = "app-${replace(app_version, ".", "-")}"
  tags = ["app:${app_version}", indexof(APP_VERSIONS, app_version) == 0 ? "app:latest" : ""]
}""")
    assert [(t.name, t.tags[1]) for t in d.targets] == [
        ("app-1-42-4", "app:latest"),
        ("app-1-42-3", ""),
    ]


def test_var_type_spec_errors() -> None:
    """TestVarTypingSpec."""
    for ok in (
        "bool",
        "number",
        "string",
        "any",
        "list(string)",
        "set(string)",
        "tuple([string, number])",
    ):
        hcl(f'variable "FOO" {{\n type = {ok}\n}}\ntarget "default" {{}}')
    for bad in ("boolean", "BOOL", 'lower("bool")'):
        with pytest.raises(BakeError, match="not a valid type"):
            hcl(f'variable "FOO" {{\n type = {bad}\n}}\ntarget "default" {{}}')


@pytest.mark.parametrize(
    ("kind", "override", "arg", "want"),
    [
        ("bool", "true", "FOO", "true"),
        ("string", '"hello"', "FOO", '"hello"'),
        ("list(string)", "hi,there", 'join("-", FOO)', "hi-there"),
        ("list(number)", "3,1,4", 'join("-", [for v in FOO: v + 1])', "4-2-5"),
        ("set(number)", "3,1,4", 'join("-", [for v in sort(FOO): v + 1])', "2-4-5"),
        ("map(number)", "foo:1,bar:2", 'join("-", sort(values(FOO)))', "1-2"),
        ("tuple([number,string])", "99,bottles", 'format("%d %s", FOO[0], FOO[1])', "99 bottles"),
    ],
)
def test_typed_var_csv_overrides(
    monkeypatch: pytest.MonkeyPatch, kind: str, override: str, arg: str, want: str
) -> None:
    """TestTypedVarOverrides (successful cases)."""
    monkeypatch.setenv("FOO", override)
    d = hcl(
        f'variable "FOO" {{\n type = {kind}\n}}\ntarget "default" {{\n args = {{ foo = {arg} }}\n}}'
    )
    assert target(d, "default").args == {"foo": want}


@pytest.mark.parametrize(
    ("kind", "override", "message"),
    [
        ("tuple([number,string])", "99,100", "Unsuitable value type"),
        ("list(string)", '"hello,world', "from CSV"),
        ("object({message: string})", "does not matter", "unsupported type"),
        ("list(list(number))", "1,2", "unsupported type"),
        ("list(number)", "1,1z", "failed to parse element"),
        ("map(number)", "foo:1:1", "expected one k/v pair"),
        ("number", "1z", "failed to parse"),
    ],
)
def test_typed_var_csv_override_errors(
    monkeypatch: pytest.MonkeyPatch, kind: str, override: str, message: str
) -> None:
    """TestTypedVarOverrides (error cases)."""
    monkeypatch.setenv("FOO", override)
    with pytest.raises(BakeError, match=message):
        hcl(
            f'variable "FOO" {{\n type = {kind}\n}}\ntarget "default" {{\n args = {{ foo = FOO }}\n}}'
        )


def test_typed_var_json_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestTypedVarOverrides_JSON, TestJSONOverridePriority."""
    text = 'variable "FOO" {\n type = list(number)\n}\ntarget "default" {\n args = { foo = length(FOO) }\n}'
    monkeypatch.setenv("FOO", "1,2")
    monkeypatch.setenv("FOO_JSON", "[3,4,5]")
    assert target(hcl(text), "default").args == {"foo": "3"}
    monkeypatch.setenv("FOO_JSON", '{"a": 1}')
    with pytest.raises(BakeError, match="from JSON"):
        hcl(text)


def test_variable_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestVariableValidation, TestVariableValidationConditionNull, ...InvalidErrorMessage."""
    text = 'variable "FOO" {\n validation {\n condition = FOO != ""\n error_message = "FOO is required."\n }\n}\ntarget "app" { args = { FOO = FOO } }'
    with pytest.raises(BakeError, match=r"FOO is required\."):
        hcl(text)
    monkeypatch.setenv("FOO", "bar")
    hcl(text)
    with pytest.raises(BakeError, match="not null"):
        hcl('variable "PORT" {\n default = 3000\n validation {}\n}\ntarget "app" {}')
    with pytest.raises(BakeError, match="invalid error message"):
        hcl(
            'variable "X" {\n default = 0\n validation {\n condition = X > 5\n }\n}\ntarget "app" {}'
        )


def test_functions_without_params_or_result() -> None:
    """TestFunctionNoParams, TestFunctionNoResult."""
    with pytest.raises(BakeError, match="empty params"):
        hcl('function "foo" {\n result = "bar"\n}\ntarget "t" {}')
    with pytest.raises(BakeError, match="empty result"):
        hcl('function "foo" {\n params = ["a"]\n}')


def test_var_unsupported_type_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestVarUnsupportedType."""
    monkeypatch.setenv("FOO", "bar")
    with pytest.raises(BakeError, match="unsupported type"):
        hcl('variable "FOO" {\n default = []\n}\ntarget "default" {}')


def test_templates_directives_heredoc_and_for() -> None:
    """HCL templates: %{ if } / %{ for }, heredocs, for expressions with if, splat."""
    d = hcl("""
variable "TAGS" { default = ["a", "", "b"] }
target "t" {
  tags = [for t in TAGS : "x:${t}" if t != ""]
  args = {
    IF = "%{ if length(TAGS) > 2 }many%{ else }few%{ endif }"
    FOR = "%{ for i, t in TAGS }${i}${t}%{ endfor }"
    SPLAT = join(",", [{ n = "p" }, { n = "q" }][*].n)
    OBJ = jsonencode({ for k, v in { b = 1, a = 2 } : v => k })
  }
  dockerfile-inline = <<-EOT
    FROM alpine
    RUN echo ${upper("hi")}
  EOT
}""")
    t = target(d, "t")
    assert t.tags == ["x:a", "x:b"]
    assert t.args == {"IF": "many", "FOR": "0a12b", "SPLAT": "p,q", "OBJ": '{"1":"b","2":"a"}'}
    assert t.dockerfile_inline == "FROM alpine\nRUN echo HI\n"
