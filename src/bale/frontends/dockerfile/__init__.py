"""The Dockerfile frontend: text → AST (parser) → typed instructions → stages → resolved build.

Public entry points:

    parse(text, filename) -> ParsedDockerfile          AST nodes with 1-based line ranges
    load(text | ParsedDockerfile, filename) -> Dockerfile   typed instructions grouped by stage
    resolve(dockerfile, target_platform=..., build_platform=..., build_args=..., target=...)
        -> ResolvedBuild                                 what the builder turns into its graph
    Lexer                                               BuildKit's word expansion

Every failure is a `bale.errors.DockerfileError` carrying the source range and lines.
"""

from bale.frontends.dockerfile.parser import Heredoc, Node, ParsedDockerfile, parse
from bale.frontends.dockerfile.resolve import (
    BaseConfigs,
    ContextBase,
    ImageBase,
    ResolvedBuild,
    ResolvedStage,
    ScratchBase,
    StageBase,
    Step,
    platform_args,
    resolve,
)
from bale.frontends.dockerfile.shell import Lexer
from bale.frontends.dockerfile.stages import Dockerfile, Stage, load

__all__ = [
    "BaseConfigs",
    "ContextBase",
    "Dockerfile",
    "Heredoc",
    "ImageBase",
    "Lexer",
    "Node",
    "ParsedDockerfile",
    "ResolvedBuild",
    "ResolvedStage",
    "ScratchBase",
    "Stage",
    "StageBase",
    "Step",
    "load",
    "parse",
    "platform_args",
    "resolve",
]
