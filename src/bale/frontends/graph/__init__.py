"""The build definition every frontend produces and the builder solves (BuildKit's LLB).

ops        typed operations (ImageOp, ScratchOp, ExecOp, CopyOp, MkdirOp), each with one
           canonical serialisation
graph      vertices (an op, its inputs' digests, where it came from) and the graph
definition what a build yields per target platform: the final vertex and image config
"""

from bale.frontends.graph.definition import (
    BuildDefinition,
    ImageResolver,
    Material,
    PlatformTarget,
    ResolvedImage,
)
from bale.frontends.graph.graph import Graph, Location, Vertex
from bale.frontends.graph.ops import (
    BindMountSpec,
    CacheMountSpec,
    CopyOp,
    ExecOp,
    ImageOp,
    InlineFile,
    MkdirOp,
    MountSpec,
    Op,
    ScratchOp,
    SecretMountSpec,
    SSHMountSpec,
    TmpfsMountSpec,
    UrlSource,
)

__all__ = [
    "BindMountSpec",
    "BuildDefinition",
    "CacheMountSpec",
    "CopyOp",
    "ExecOp",
    "Graph",
    "ImageOp",
    "ImageResolver",
    "InlineFile",
    "Location",
    "Material",
    "MkdirOp",
    "MountSpec",
    "Op",
    "PlatformTarget",
    "ResolvedImage",
    "SSHMountSpec",
    "ScratchOp",
    "SecretMountSpec",
    "TmpfsMountSpec",
    "UrlSource",
    "Vertex",
]
