from docker_fixtures import (  # noqa: F401  (fixtures)
    compose_stack,
    containers,
    docker_client,
    shop_image,
)
from proxy.upstreams import echo, web  # noqa: F401  (fixtures)
