"""The chart of GL accounts: who owns (clients, the house, the tax office) and where assets are
(the bank, the depository). ``prefix:rest`` names; the prefix tells owner from place.

Sign convention: an owner's balance is positive, a place holding assets for the firm is negative,
so Σ ownership + Σ location = 0 for every asset (the stock record and the cash book in one rule).
"""

from __future__ import annotations

OWNER_PREFIXES = frozenset({"client", "house", "income", "tax", "suspense", "penalty",
                            "claim"})
LOCATION_PREFIXES = frozenset({"bank", "depository"})

COMMISSION_INCOME = "income:commission"
FEE_INCOME = "income:fees"
WITHHOLDING_TAX = "tax:withholding"

# Central securities depositories by the market of the primary listing.
CSD_OF_MIC = {"XWAR": "KDPW", "XNYS": "DTC", "XNAS": "DTC", "ARCX": "DTC", "BATS": "DTC",
              "XASE": "DTC", "XETR": "CBF", "XFRA": "CBF", "XLON": "CREST", "XPAR": "ESES",
              "XAMS": "ESES", "XBRU": "ESES", "XLIS": "INTERBOLSA", "XMIL": "MONTETITOLI",
              "XDUB": "EUROCLEAR", "XSWX": "SIS", "XMAD": "IBERCLEAR"}


def owner(account_id: str, kind: str) -> str:
    return f"{'house' if kind == 'HOUSE' else 'client'}:{account_id}"


def bank(currency: str) -> str:
    return f"bank:{currency}"


def depository(mic: str) -> str:
    return f"depository:{CSD_OF_MIC.get(mic, mic)}"


def is_owner(gl_account: str) -> bool:
    return gl_account.split(":", 1)[0] in OWNER_PREFIXES


def is_location(gl_account: str) -> bool:
    return gl_account.split(":", 1)[0] in LOCATION_PREFIXES


def account_id_of(gl_account: str) -> str | None:
    """The book-folder account behind a client or house GL account, else None."""
    prefix, _, rest = gl_account.partition(":")
    return rest if prefix in ("client", "house") else None
