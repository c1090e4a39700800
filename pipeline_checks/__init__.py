"""pipeline-checks: a pre-merge regression gate for Keras training pipelines.

Importing this package is cheap: the public names below load their modules (and
Keras) only when first used, so the pytest plugin costs nothing in a repository
whose tests never touch it.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "TinyImageDataset": "pipeline_checks.testing.datasets",
    "make_tiny_images": "pipeline_checks.testing.datasets",
    "ApplicationModel": "pipeline_checks.model.applications",
    "build_application": "pipeline_checks.model.applications",
    "known_applications": "pipeline_checks.model.applications",
    "PipelineCheckFailure": "pipeline_checks.errors",
    "PipelineRunError": "pipeline_checks.errors",
    "Recalibration": "pipeline_checks.batchnorm.recalibration",
    "recalibrate_batchnorm": "pipeline_checks.batchnorm.recalibration",
    "Agreement": "pipeline_checks.oracle.agreement",
    "measure_agreement": "pipeline_checks.oracle.agreement",
    "assert_fit_evaluate_agree": "pipeline_checks.oracle.agreement",
    "Pipeline": "pipeline_checks.pipelines.pipeline",
    "Recorder": "pipeline_checks.attach.recorder",
    "CheckResult": "pipeline_checks.results.check_result",
    "diagnose_saved_model": "pipeline_checks.saved_model.diagnose",
    "FlopCount": "pipeline_checks.model.flops",
    "count_flops": "pipeline_checks.model.flops",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pipeline_checks' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
