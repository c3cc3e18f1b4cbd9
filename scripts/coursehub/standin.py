"""A generated STAND-IN for the upstream z2jh chart: a test double.

The real chart cannot be downloaded on the machines this project is developed
and tested on. This stand-in lets real Helm render coursehub's own templates and
shows what Helm hands to the dependency: it carries z2jh's real default values
and values schema (read from ../shared/upstream/, so Helm applies z2jh's schema
to the `jupyterhub:` block), and one template of our own that puts the values it
receives into Secret/hub under `values.yaml`, which is where z2jh puts them.
It renders none of z2jh's workloads, so it is never evidence about them; tests
and benchmarks that use it say so.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from coursehub.upstream import NAME, VERSION, load_data

STAND_IN_ANNOTATION = "coursehub.jupyter.org/stand-in"

_TEMPLATE = f"""\
# coursehub's stand-in for z2jh (a test double): the values the dependency receives.
apiVersion: v1
kind: Secret
metadata:
  name: hub
  annotations:
    {STAND_IN_ANNOTATION}: "true"
type: Opaque
data:
  values.yaml: {{{{ .Values | toYaml | b64enc | quote }}}}
"""


def write_stand_in(parent: Path) -> Path:
    """Write the stand-in chart into `parent` and return its folder."""
    data = load_data(None)
    chart = parent / NAME
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": NAME,
                "version": VERSION,
                "description": "coursehub's generated stand-in for the upstream chart (test double)",
            }
        )
    )
    (chart / "values.yaml").write_text(yaml.safe_dump(data.defaults))
    (chart / "values.schema.json").write_text(json.dumps(data.schema))
    (chart / "templates" / "hub-secret.yaml").write_text(_TEMPLATE)
    return chart
