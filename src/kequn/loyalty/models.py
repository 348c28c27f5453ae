"""Loyalty: the programme, members and tiers, the points ledger, rewards, coupons, referrals.

The ledger is append-only: an entry's kind, points and key never change once written. Grants
(earn and adjust entries that add points) carry running counters, ``remaining`` (available
points not yet spent or expired), ``held`` (points still pending) and ``expired`` (points the
expiry took), which the services keep in step with the entries that draw on them
(``Allocation`` rows say which spend or reversal took or gave back how much of which grant;
an expire entry sums what expired of its member's grants). The nightly expiry does not touch
the grants: it writes one expire entry per member and marks the member (``expired_through``,
``expired_upto_entry``); the grants under the mark count as expired until the member's next
write moves their ``remaining`` to ``expired`` (``open_grants`` is the reader's view). A
member's balance is the sum of the ledger's ``points`` and its pending points the sum of
``pending``; ``Member.balance`` and ``Member.pending`` store both for speed and ``kequn
loyalty reconcile`` checks them.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kequn.customers.models import Customer


class Programme(models.Model):
    """The programme's rules (one row: see services.get_programme)."""

    class Expiry(models.TextChoices):
        NEVER = "never", _("Never")
        DAYS = "days", _("After a number of days")
        MONTH_END = "month_end", _("At the end of the month, N months after earning")
        YEAR_END = "year_end", _("At the end of the year, N months after earning")

    class TierBasis(models.TextChoices):
        SPEND = "spend", _("Spend in the last 12 months")
        POINTS = "points", _("Points earned in the last 12 months")

    name = models.CharField(_("name"), max_length=100, default="Kequn Club")
    is_active = models.BooleanField(_("active"), default=True)
    auto_enroll = models.BooleanField(
        _("enrol buyers automatically"),
        default=True,
        help_text=_("A customer whose order arrives becomes a member and earns its points."),
    )
    points_per_unit = models.DecimalField(
        _("points per currency unit"),
        max_digits=8,
        decimal_places=3,
        default=Decimal(1),
        help_text=_("Points earned per unit (e.g. 1 yuan) of the net paid amount."),
    )
    point_value = models.DecimalField(
        _("value of a point"), max_digits=8, decimal_places=4, default=Decimal("0.01")
    )
    pending_days = models.PositiveIntegerField(
        _("pending days"),
        default=7,
        help_text=_("Points from an order become spendable this many days after the order."),
    )
    expiry = models.CharField(
        _("expiry"), max_length=10, choices=Expiry.choices, default=Expiry.YEAR_END
    )
    expiry_days = models.PositiveIntegerField(_("expiry days"), default=365)
    expiry_months = models.PositiveIntegerField(_("expiry months"), default=12)
    allow_negative_balance = models.BooleanField(
        _("allow a negative balance"),
        default=True,
        help_text=_(
            "A refunded order takes back its points even when they were spent (the balance "
            "goes below zero); otherwise it takes back at most the balance."
        ),
    )
    category_multipliers = models.JSONField(
        _("multipliers by product category"),
        default=dict,
        blank=True,
        help_text=_('Category code to multiplier, e.g. {"phones": 2}.'),
    )
    campaign_multipliers = models.JSONField(_("multipliers by campaign"), default=dict, blank=True)
    event_points = models.JSONField(
        _("points for events"),
        default=dict,
        blank=True,
        help_text=_(
            'Points per event: {"review": 20, "sign_in": 5, "profile": 50, "birthday": 100}.'
        ),
    )
    tier_basis = models.CharField(
        _("tier qualification"), max_length=10, choices=TierBasis.choices, default=TierBasis.SPEND
    )
    referrer_points = models.PositiveIntegerField(_("points for the referrer"), default=200)
    referee_points = models.PositiveIntegerField(_("points for the referred customer"), default=100)
    referral_min_amount = models.DecimalField(
        _("minimum first purchase of a referral"),
        max_digits=12,
        decimal_places=2,
        default=Decimal(100),
    )
    referral_monthly_cap = models.PositiveIntegerField(
        _("referral rewards per referrer per month"), default=10
    )
    events_cursor = models.BigIntegerField(
        _("last order event read"),
        default=0,
        editable=False,
        help_text=_("Order events after this id have not earned their points yet."),
    )

    class Meta:
        verbose_name = _("loyalty programme")
        verbose_name_plural = _("loyalty programme")

    def __str__(self) -> str:
        return self.name


class Tier(models.Model):
    code = models.SlugField(_("code"), max_length=30, unique=True)
    name = models.CharField(_("name"), max_length=50)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True, help_text=_("0 is the lowest."))
    threshold = models.DecimalField(
        _("qualifying threshold"),
        max_digits=14,
        decimal_places=2,
        default=Decimal(0),
        help_text=_("Spend (or points) in a rolling 12 months that qualifies for the tier."),
    )
    earn_multiplier = models.DecimalField(
        _("earn multiplier"), max_digits=5, decimal_places=2, default=Decimal(1)
    )
    discount_percent = models.DecimalField(
        _("discount (%)"), max_digits=5, decimal_places=2, default=Decimal(0)
    )
    birthday_points = models.PositiveIntegerField(_("birthday gift (points)"), default=0)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["rank"]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    customer = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="loyalty_member",
        verbose_name=_("customer"),
    )
    tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("tier")
    )
    tier_since = models.DateTimeField(_("tier since"), default=timezone.now)
    balance = models.BigIntegerField(_("available points"), default=0)
    pending = models.BigIntegerField(_("pending points"), default=0)
    referral_code = models.CharField(_("referral code"), max_length=16, unique=True)
    referred_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referrals_made",
        verbose_name=_("referred by"),
    )
    joined_at = models.DateTimeField(_("joined at"), default=timezone.now)
    # The nightly expiry's mark (see services.expiry): grants with id <= expired_upto_entry
    # that expire by expired_through are expired, whatever their own ``remaining`` says.
    expired_through = models.DateTimeField(
        _("expired through"), null=True, blank=True, editable=False
    )
    expired_upto_entry = models.BigIntegerField(
        _("expired up to entry"), null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["customer_id"]
        indexes = [models.Index(fields=["tier"], name="loyalty_member_tier_idx")]

    def __str__(self) -> str:
        return str(self.customer_id)


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        EARN = "earn", _("Earn")
        RELEASE = "release", _("Pending → available")
        SPEND = "spend", _("Spend")
        EXPIRE = "expire", _("Expire")
        REVERSE = "reverse", _("Reverse")
        ADJUST = "adjust", _("Adjust")

    # No index of its own: loyalty_entry_member_idx (member, id) serves every member lookup.
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="entries",
        verbose_name=_("member"),
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    points = models.BigIntegerField(_("points"), help_text=_("Change of the available balance."))
    pending = models.BigIntegerField(_("pending"), default=0)
    # Unique by a constraint, not unique=True: on PostgreSQL that adds a second index for
    # LIKE searches no one runs, which every earn would pay for.
    key = models.CharField(_("idempotency key"), max_length=200)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    source = models.CharField(_("source"), max_length=30, blank=True)
    order_ref = models.CharField(_("order"), max_length=64, blank=True)
    # Indexed only where set (loyalty_entry_reverses_idx): most entries reverse nothing.
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        verbose_name=_("reverses"),
        db_index=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    # Grants only: when pending points become available and when available ones expire.
    available_at = models.DateTimeField(_("available from"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # Grants only: running counters (see the module docstring).
    remaining = models.BigIntegerField(_("unspent points"), default=0)
    held = models.BigIntegerField(_("points still pending"), default=0)
    expired = models.BigIntegerField(_("expired points"), default=0)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        indexes = [
            # Spending and the nightly expiry read a member's (or a range of members') entries
            # through this index. No index mentions ``remaining``: PostgreSQL can then update
            # it in place (a HOT update), which is most of the expiry's work.
            models.Index(fields=["member", "id"], name="loyalty_entry_member_idx"),
            models.Index(
                fields=["available_at"], condition=Q(held__gt=0), name="loyalty_held_grant_idx"
            ),
            # Only entries of an order: expiry, adjustments and events (most of the ledger)
            # carry none and need not pay for an index entry each.
            models.Index(
                fields=["order_ref"], condition=~Q(order_ref=""), name="loyalty_entry_order_idx"
            ),
            models.Index(
                fields=["reverses"],
                condition=Q(reverses__isnull=False),
                name="loyalty_entry_reverses_idx",
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["key"], name="loyalty_entry_key_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d}"


def open_grants_q(member: Member | None = None) -> Q:
    """Return the filter of grants with unspent, unexpired points (under the expiry's mark).

    With a member given, its mark is read from the object instead of joined in.
    """
    if member is not None:
        if member.expired_through is None or member.expired_upto_entry is None:
            return Q(remaining__gt=0)
        return Q(remaining__gt=0) & (
            Q(expires_at__isnull=True)
            | Q(expires_at__gt=member.expired_through)
            | Q(id__gt=member.expired_upto_entry)
        )
    return Q(remaining__gt=0) & (
        Q(member__expired_through__isnull=True)
        | Q(expires_at__isnull=True)
        | Q(expires_at__gt=models.F("member__expired_through"))
        | Q(id__gt=models.F("member__expired_upto_entry"))
    )


def open_points(member: Member | None = None) -> models.Case:
    """Return an expression for a grant's unspent, unexpired points (0 under the mark)."""
    return models.Case(
        models.When(open_grants_q(member), then=models.F("remaining")),
        default=models.Value(0),
        output_field=models.BigIntegerField(),
    )


class Allocation(models.Model):
    """How many points of which grant an entry took (negative) or gave back (positive)."""

    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.CASCADE, related_name="allocations", verbose_name=_("entry")
    )
    grant = models.ForeignKey(
        LedgerEntry, on_delete=models.CASCADE, related_name="drawn_by", verbose_name=_("grant")
    )
    points = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        indexes = [models.Index(fields=["grant"], name="loyalty_alloc_grant_idx")]

    def __str__(self) -> str:
        return f"{self.points:+d} ({self.grant_id})"


class TierChange(models.Model):
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="tier_changes", verbose_name=_("member")
    )
    from_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, related_name="+", verbose_name=_("from")
    )
    to_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, related_name="+", verbose_name=_("to")
    )
    reason = models.CharField(_("reason"), max_length=300)
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier history")
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return self.reason


class TierCheck(models.Model):
    """A member whose tier may have risen during an import: checked once at its end."""

    member = models.OneToOneField(
        Member,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        verbose_name=_("member"),
    )

    class Meta:
        verbose_name = _("pending tier check")
        verbose_name_plural = _("pending tier checks")

    def __str__(self) -> str:
        return str(self.member_id)


class Reward(models.Model):
    class Kind(models.TextChoices):
        COUPON_AMOUNT = "amount", _("Coupon: an amount off")
        COUPON_PERCENT = "percent", _("Coupon: a percentage off")
        GIFT = "gift", _("Free gift")
        IN_STORE = "in_store", _("In-store item")

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    points_cost = models.PositiveIntegerField(_("points"))
    amount = models.DecimalField(
        _("amount off"), max_digits=12, decimal_places=2, default=Decimal(0)
    )
    percent = models.DecimalField(
        _("percent off"), max_digits=5, decimal_places=2, default=Decimal(0)
    )
    min_spend = models.DecimalField(
        _("minimum spend"), max_digits=12, decimal_places=2, default=Decimal(0)
    )
    stock = models.PositiveIntegerField(
        _("stock"), null=True, blank=True, help_text=_("Empty: unlimited.")
    )
    per_member_limit = models.PositiveIntegerField(
        _("limit per member"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    valid_days = models.PositiveIntegerField(_("coupon valid for (days)"), default=30)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        ordering = ["points_cost", "code"]

    def __str__(self) -> str:
        return self.name


class Redemption(models.Model):
    class Status(models.TextChoices):
        DONE = "done", _("Redeemed")
        CANCELLED = "cancelled", _("Cancelled")

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="redemptions", verbose_name=_("member")
    )
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("reward")
    )
    points = models.PositiveIntegerField(_("points"))
    spend = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, related_name="redemption", verbose_name=_("spend")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DONE
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-id"]
        indexes = [models.Index(fields=["member", "reward"], name="loyalty_redeem_member_idx")]

    def __str__(self) -> str:
        return f"{self.reward_id} ({self.points})"


class Coupon(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        USED = "used", _("Used")
        CANCELLED = "cancelled", _("Cancelled")

    code = models.CharField(_("code"), max_length=32, unique=True)
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="coupons", verbose_name=_("member")
    )
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("reward")
    )
    redemption = models.OneToOneField(
        Redemption,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="coupon",
        verbose_name=_("redemption"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Reward.Kind.choices)
    amount = models.DecimalField(_("amount off"), max_digits=12, decimal_places=2, default=0)
    percent = models.DecimalField(_("percent off"), max_digits=5, decimal_places=2, default=0)
    min_spend = models.DecimalField(_("minimum spend"), max_digits=12, decimal_places=2, default=0)
    source = models.CharField(_("issued by"), max_length=30, default="redemption")
    issue_key = models.CharField(_("issue key"), max_length=200, unique=True, null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    order_ref = models.CharField(_("order"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-id"]
        indexes = [models.Index(fields=["member", "status"], name="loyalty_coupon_member_idx")]

    def __str__(self) -> str:
        return self.code


class Referral(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a first purchase")
        REWARDED = "rewarded", _("Rewarded")
        REFUSED = "refused", _("Refused")

    referrer = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="referrals", verbose_name=_("referrer")
    )
    referee = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="referral", verbose_name=_("referred")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    order_ref = models.CharField(_("qualifying order"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    rewarded_at = models.DateTimeField(_("rewarded at"), null=True, blank=True)
    device_id = models.CharField(_("device id"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.referrer_id} → {self.referee_id}"
