"""manage.py snapshot CAMPAIGN [CAMPAIGN ...] [--min-confidence N]: freeze comparisons (see actions.snapshots)."""

from django.core.management.base import BaseCommand, CommandError

from labeling_app.actions import Refused
from labeling_app.actions.snapshots import create_snapshot, snapshot_directory
from labeling_app.models import Campaign


class Command(BaseCommand):
    help = "Freeze the comparisons of campaigns (by slug) into a content-hashed snapshot; prints its directory."

    def add_arguments(self, parser):
        parser.add_argument("campaigns", nargs="+", help="Campaign slugs.")
        parser.add_argument("--min-confidence", type=int, default=1, choices=range(1, 6))
        parser.add_argument("--name", default=None, help="Snapshot name (default: campaign and hash).")

    def handle(self, *args, **options):
        campaigns = list(Campaign.objects.filter(slug__in=options["campaigns"]))
        missing = set(options["campaigns"]) - {c.slug for c in campaigns}
        if missing:
            raise CommandError(f"No campaign with slug {', '.join(sorted(missing))}.")
        try:
            snapshot, created = create_snapshot(campaigns, min_confidence=options["min_confidence"],
                                                name=options["name"])
        except Refused as exc:
            raise CommandError(exc.message) from exc
        state = "created" if created else "already existed"
        self.stdout.write(f"snapshot {snapshot.name} ({snapshot.comparison_count} comparisons, sha256 "
                          f"{snapshot.sha256}) {state}: {snapshot_directory(snapshot)}")
