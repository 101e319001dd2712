# SPID attribute names are used verbatim with NameFormat basic (Avviso / attributi.rst); an identity
# map keeps pysaml2 from dropping, lowercasing or URI-mapping them.
from saml2.saml import NAME_FORMAT_BASIC

_NAMES = ["spidCode", "fiscalNumber", "name", "familyName", "email", "dateOfBirth"]
MAP = {"identifier": NAME_FORMAT_BASIC, "fro": {n: n for n in _NAMES}, "to": {n: n for n in _NAMES}}
