"""The built-in step library (installed as ``runbooks.steps``), one module per domain; the runbooks plugin
registers each as a pytest plugin.

Every public module here is a step module: adding ``steps/<domain>.py`` registers its steps; its
``TITLE`` and ``CATALOG_ORDER`` place them in the step catalogue. Modules starting with ``_`` are helpers.
"""

import pkgutil

MODULES = tuple(
    f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_")
)
