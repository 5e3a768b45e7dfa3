from docker_fixtures import (  # noqa: F401  (fixtures)
    containers,
    docker_client,
)
from k8s_fixture import cluster  # noqa: F401  (fixture)
