"""Microsoft's official Python clients (azure-identity, azure-keyvault-secrets) against the
Azure fake, so the fake cannot drift from the real protocol. REQUESTS_CA_BUNDLE names the
fake's CA.

  azure_client.py AUTHORITY_HOST VAULT_URL CLIENT_SECRET NAME... -> one line each:
      ok <value>  |  not_found  |  http <status>  |  auth_failed
"""
import sys

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

TENANT = "00000000-0000-0000-0000-0000000000a1"
CLIENT_ID = "11111111-2222-3333-4444-5555555555b2"


def main() -> None:
    authority, vault_url, client_secret, *names = sys.argv[1:]
    credential = ClientSecretCredential(TENANT, CLIENT_ID, client_secret, authority=authority, disable_instance_discovery=True)
    # A loopback vault cannot be under *.vault.azure.net: the challenge check is off here.
    client = SecretClient(vault_url, credential, verify_challenge_resource=False)
    for name in names:
        try:
            print("ok " + client.get_secret(name).value)
        except ResourceNotFoundError:
            print("not_found")
        except ClientAuthenticationError:
            print("auth_failed")
        except HttpResponseError as e:
            print(f"http {e.status_code}")


if __name__ == "__main__":
    main()
