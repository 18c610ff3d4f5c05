"""The thesis sweep, one module per concept (the notebooks `10a_experiments.config` .. `10h_experiments.sweep`).

Every public name of the sub-package is importable from here, as it was before the split:
`from soft_grounding.experiments import run_experiment, SweepConfig, METHODS`. A name is looked up in the modules
lowest first and loaded on first use (PEP 562), so importing one module, as `analysis` imports `store`, loads
nothing above it: in particular not `sweep`, which sits above `analysis`.

This file is written by hand (nbdev exports the modules, not this package's `__init__`)."""
import importlib

MODULES = ("config", "store", "context", "runs", "workers", "tuning", "probe", "plan", "sweep")  # lowest first


def _module(name:str):
    return importlib.import_module(f"{__name__}.{name}")


def __getattr__(name:str):
    "A public name of one of `MODULES` (the lowest that has it), or `__all__`: all of them."
    if name == "__all__": return [n for m in MODULES for n in _module(m).__all__]
    for m in MODULES:
        module = _module(m)
        if name in module.__all__: return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__getattr__("__all__")))
