"""Texts the IXC sandbox answers with: the HTML error page and the localised ``message`` strings.

IXC users carry a language (pt-BR by default); the sandbox picks it per API token. Clients must branch on
``type`` and never parse ``message`` (ixc.md 1), so these strings only need to look like IXC's: refusals end with
``<br />`` as captured on real installs; the exact wording of several is a project assumption (ixc.md 7, X2).
"""

from __future__ import annotations

HTML_ERROR_TEXT = "Ocorreu um erro ao processar. Contate o suporte IXC Soft."
HTML_ERROR_PAGE = (
    '<div style="background-color: #d9534f; color: #ffffff; padding: 10px; border-radius: 4px; '
    f'font-family: Arial, sans-serif; font-size: 14px;">{HTML_ERROR_TEXT}</div>'
)
"""IXC's HTML error page: one red ``<div>``, no JSON at all (ixc.md 5.4)."""

DEFAULT_LANGUAGE = "pt-BR"

_MESSAGES: dict[str, dict[str, str]] = {
    "pt-BR": {
        "inserted": "Registro inserido com sucesso!",
        "updated": "Registro atualizado com sucesso!",
        "removed": "Registro removido com sucesso!",
        "not_found": "Registro não encontrado!<br />",
        "required": "O campo {field} é obrigatório!<br />",
        "bad_value": "Valor inválido para o campo {field}!<br />",
        "bad_reference": "O registro {value} informado no campo {field} não existe!<br />",
        "in_use": "Este registro não pode ser excluído pois está sendo utilizado em {table}!<br />",
        "unavailable": "Recurso {table} não está disponível!",
        "ip_blocked": "Seu IP não está liberado para efetuar login!",
    },
    "en-US": {
        "inserted": "Record successfully inserted!",
        "updated": "Record successfully updated!",
        "removed": "Record successfully removed!",
        "not_found": "Record not found!<br />",
        "required": "The field {field} is required!<br />",
        "bad_value": "Invalid value for the field {field}!<br />",
        "bad_reference": "The record {value} given in the field {field} does not exist!<br />",
        "in_use": "This record cannot be deleted because it is used in {table}!<br />",
        "unavailable": "Resource {table} is not available!",
        "ip_blocked": "Your IP is not allowed to log in!",
    },
}

LANGUAGES = frozenset(_MESSAGES)


def message(language: str, key: str, **fields: str) -> str:
    """The ``message`` text for ``key`` in ``language`` (pt-BR when the language is unknown)."""
    table = _MESSAGES.get(language, _MESSAGES[DEFAULT_LANGUAGE])
    return table[key].format(**fields)
