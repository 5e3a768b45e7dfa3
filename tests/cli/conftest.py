from docker_fixtures import (  # noqa: F401  (fixtures)
    containers,
    docker_client,
    shop_image,
)
