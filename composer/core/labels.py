"""Label keys tisbench writes on the objects of a lab, beyond compose's own. Pure constants."""

LAB_LABEL = "tisbench.lab"  # on every object a lab creates: removal finds them all by it, even after a crash
RUN_LABEL = "tisbench.run"  # one id per process that creates a lab: its cleanup touches only its own
OWNER_LABEL = "tisbench.owner"  # "<hostname>:<pid>" of a process that removes the lab when it ends
ENGINE_LABEL = "tisbench.engine"  # "swarm" on swarm labs' objects; composer.engine.swarm owns those
ADVISORY_ULIMITS_LABEL = "tisbench.ulimits-advisory"  # server: ulimits that are NGC's advice, not the user's
ULIMITS_DROPPED_LABEL = "tisbench.ulimits-dropped"  # server: the advice this engine could not grant

# What the lab is, on each of its objects (``tisbench status`` reads them back)
RELEASE_LABEL = "tisbench.release"
STACK_LABEL = "tisbench.stack"
MODEL_LABEL = "tisbench.model"
GPUS_LABEL = "tisbench.gpus"
CLIENTS_LABEL = "tisbench.clients"  # swarm: the perf_analyzer replicas

# On the lab images tisbench builds (and on the probe containers that read their versions)
LAB_IMAGE_LABEL = "tisbench.lab-image"
KIND_LABEL = "tisbench.kind"  # server | sdk
SERVER_WHEEL_LABEL = "tisbench.server-wheel"
ANALYZER_WHEEL_LABEL = "tisbench.perf-analyzer-wheel"
RECIPE_LABEL = "tisbench.recipe"
SERVER_VERSION_LABEL = "tisbench.server-version"
ANALYZER_VERSION_LABEL = "tisbench.perf-analyzer-version"
ANALYZER_SOURCE_LABEL = "tisbench.perf-analyzer-version-source"
ANALYZER_REPORTED_LABEL = "tisbench.perf-analyzer-reported"
PROBE_LABEL = "tisbench.image-probe"

# Docker Compose's own labels (v2.40.3's conventions): `docker compose -p NAME ps|logs|down` find a lab by them
COMPOSE_VERSION = "2.40.3"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_WORKING_DIR = "com.docker.compose.project.working_dir"
COMPOSE_CONFIG_FILES = "com.docker.compose.project.config_files"
COMPOSE_VERSION_LABEL = "com.docker.compose.version"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"
COMPOSE_NUMBER = "com.docker.compose.container-number"
COMPOSE_CONFIG_HASH = "com.docker.compose.config-hash"
COMPOSE_IMAGE = "com.docker.compose.image"
COMPOSE_DEPENDS_ON = "com.docker.compose.depends_on"
COMPOSE_NETWORK = "com.docker.compose.network"
COMPOSE_VOLUME = "com.docker.compose.volume"
# Docker's `stack deploy` labels: `docker stack ps|rm NAME` see a swarm lab as their own
STACK_NAMESPACE = "com.docker.stack.namespace"
STACK_IMAGE = "com.docker.stack.image"
# On a server image tisbench made for a stack (server.requirements, server.build)
DERIVED_LABEL = "tisbench.derived"  # requirements | build
BASE_IMAGE_LABEL = "tisbench.base-image"  # the reference it was made from
BASE_ID_LABEL = "tisbench.base-id"
REQUIREMENTS_LABEL = "tisbench.requirements"  # the requirement lines, one per line
