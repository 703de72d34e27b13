"""Google's official Python client (google-cloud-secret-manager, REST transport) against
the GCP fake, so the fake cannot drift from the real protocol.

  gcp_client.py ENDPOINT_HOST_PORT SECRET_VERSION_NAME... -> one line each:
      ok <value>  |  not_found  |  permission_denied
"""
import sys

from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import SecretManagerServiceRestTransport


def main() -> None:
    host, *names = sys.argv[1:]
    transport = SecretManagerServiceRestTransport(host=host, credentials=AnonymousCredentials(), url_scheme="http")
    client = secretmanager.SecretManagerServiceClient(transport=transport)
    for name in names:
        try:
            response = client.access_secret_version(name=name)
            print("ok " + response.payload.data.decode("utf-8") + " crc=" + str(response.payload.data_crc32c))
        except exceptions.NotFound:
            print("not_found")
        except (exceptions.Forbidden, exceptions.PermissionDenied):  # REST maps 403 to Forbidden
            print("permission_denied")


if __name__ == "__main__":
    main()
