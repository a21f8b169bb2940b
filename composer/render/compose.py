"""Render a lab's file from its design: the docker-compose.yml of a single-host lab, or the stack
file (``deploy:`` sections) of a swarm lab. jinja2 with StrictUndefined; returns text, writes nothing.

Every user value passes through the ``y`` filter: an escaped YAML double-quoted scalar, so
``: # " ' {{ }}`` and newlines cannot add keys, and ``$`` is doubled so compose's
variable interpolation leaves it alone.
"""

from __future__ import annotations

from composer import __version__
from composer.core.design import SWARM_ENDPOINT_MODE, SWARM_RESTART, LabDesign
from composer.core.triton import ANALYZER
from composer.render.environment import environment

TEMPLATE = "docker-compose.yml.j2"


def render_lab(design: LabDesign) -> str:
    swarm = design.engine == "swarm"
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            design=design,
            swarm=swarm,
            clients=design.service(ANALYZER).replicas,
            endpoint_mode=SWARM_ENDPOINT_MODE,
            restart=SWARM_RESTART,
            tisbench_version=__version__,
        )
    )
