from docker_fixtures import (  # noqa: F401  (fixtures)
    compose_stack,
    containers,
    docker_client,
    shop_image,
)
from k8s_fixture import cluster  # noqa: F401  (fixture)
from proxy.upstreams import echo, web  # noqa: F401  (fixtures)
