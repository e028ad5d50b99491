"""Email for alerts over SMTP (`smtplib`): the company's relay in production, the sandbox's sink by
default.

Host, port, sender and recipients are plain settings; the password reaches the resource only as a
`dg.EnvVar`. STARTTLS is used when ``starttls`` is on (a relay on 587); AUTH only when a username is
set. Failures become our error hierarchy: a refused login is an `AuthError` (fix the settings), a
connection problem or a 4xx answer a `TransientError` (the next tick tries again).
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import dagster as dg

from mienne_ops.errors import AuthError, PermanentError, TransientError

SYSTEM = "smtp"


class EmailAlertResource(dg.ConfigurableResource):
    host: str
    port: int = 587
    username: str = ""
    password: str = ""
    starttls: bool = False
    sender: str
    recipients: list[str]
    timeout_seconds: int = 10

    def send(self, subject: str, text: str) -> None:
        """Send one plain-text mail to every recipient."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Subject"] = subject
        message.set_content(text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as error:
            raise AuthError(
                "the SMTP server refused our login",
                system=SYSTEM,
                operation="login",
                code=str(error.smtp_code),
            ) from error
        except smtplib.SMTPResponseException as error:
            kind = TransientError if 400 <= error.smtp_code < 500 else PermanentError
            raise kind(
                f"the SMTP server answered {error.smtp_code}",
                system=SYSTEM,
                operation="send",
                code=str(error.smtp_code),
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise TransientError(f"SMTP: {type(error).__name__}", system=SYSTEM, operation="send") from error
