"""What customers see: an account's usage and running charges for the usage API
(`usage_view`, `account_views`, `credit_view` for prepaid grants) and spend alerts (`spend_alerts`;
the customers' own thresholds' events and emails in `customer_alerts` and `alert_email`);
and how they get in: the customer API's authorizer (`authorizer`), the operator's keys and
portal links (`access`), and what API Gateway answers on the API's behalf
(`gateway_answers`: its refusals and the portal page).

May import `billing.core`, `billing.rating.ledger` (to read ledgers), `billing.store`;
never invoicing's run or the rating service."""
