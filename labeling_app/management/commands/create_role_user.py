"""Create a user with a role: ``manage.py create_role_user alice --role annotator``."""

import getpass
import os

from django.core.management.base import BaseCommand, CommandError

from labeling_app.roles import ROLES, create_user_with_role


class Command(BaseCommand):
    help = "Create (or update) a user and give them one role: annotator, engineer or lead."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="Read the password from this environment variable instead of prompting.",
        )

    def handle(self, *args, username, role, email, password_env, **options):
        if password_env:
            password = os.environ.get(password_env, "")
            if not password:
                raise CommandError(f"Environment variable {password_env} is empty or not set.")
        else:
            password = getpass.getpass(f"Password for {username}: ")
        if len(password) < 8:
            raise CommandError("The password must have at least 8 characters.")
        user = create_user_with_role(username, password, role, email=email)
        self.stdout.write(self.style.SUCCESS(f"User {user.username!r} now has the role {role!r}."))
