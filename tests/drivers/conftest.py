from docker_fixtures import containers, docker_client, shop_image  # noqa: F401  (fixtures)
