"""Invoicing: the invoice workflow (from the ASL file), its task functions, the schedule that
starts it, the invoice bucket, the email configuration and the domain-event bus."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import (
    ArnFormat,
    Duration,
    Fn,
    Stack,
    aws_events,
    aws_events_targets,
    aws_iam,
    aws_kms,
    aws_lambda,
    aws_lambda_destinations,
    aws_s3,
    aws_scheduler,
    aws_scheduler_targets,
    aws_ses,
    aws_stepfunctions,
)
from constructs import Construct

from billing.invoicing import workflow as workflows
from billing.settings import (
    EVENT_BUS_ENV,
    INVOICE_BUCKET_ENV,
    INVOICE_KEY_ENV,
    RUN_BUCKET_ENV,
    RUN_CONCURRENCY_ENV,
    SELLER_ENV,
    SENDER_ENV,
    SES_CONFIGURATION_SET_ENV,
    SES_MAX_SEND_RATE_ENV,
    STATE_MACHINE_ENV,
)
from billing.store.run_files import RUNS_PREFIX
from stacks.common import (
    HandlerFunction,
    acknowledge,
    acknowledge_object_prefix,
    colder_with_age,
    encrypted_log_group,
    failure_queue,
    secure_bucket,
)
from stacks.ledger import Ledger
from stacks.security import DataKeys
from stacks.settings import (
    EMAIL_EVENTS,
    ISSUE_INVOICES,
    LIST_DUE,
    REPORT_RUN,
    SCHEDULE_INPUT,
    SEND_INVOICES,
    START_INVOICE_RUN,
    FunctionSettings,
    Stage,
)

# Every invoice document lives under this prefix (billing.store.documents; the infra tests
# hold the two together).
INVOICE_PREFIX = "invoices/"
# The invoice run's files: each run's folder is under RUNS_PREFIX (billing.store.run_files),
# what the Distributed Map's ResultWriter writes under the prefix its definition names.
MAP_RESULTS_PREFIX = "map-runs/"
# A run's files are its scratch (the invoice records and documents are the records): kept
# long enough to read a month-end run's report, then deleted.
RUN_FILES_KEPT = Duration.days(30)


class Invoicing(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        keys: DataKeys,
        access_logs: aws_s3.IBucket,
        layer: aws_lambda.ILayerVersion,
        ledger: Ledger,
        sender: str,
        stage: Stage,
    ) -> None:
        super().__init__(scope, construct_id)
        key = keys.state
        # Invoices are accounting records: kept, moved to cheaper storage as they age, and
        # write-once. Object Lock keeps every version of every document for the retention
        # (compliance mode in prod: nobody, root included, shortens it or deletes a
        # version; governance elsewhere, so a dev stack can be torn down). Noncurrent
        # versions are never expired by a rule: there are none to expire, see below.
        retention = (
            aws_s3.ObjectLockRetention.compliance(stage.invoice_retention)
            if stage.is_production
            else aws_s3.ObjectLockRetention.governance(stage.invoice_retention)
        )
        self.bucket = secure_bucket(
            self,
            "Invoices",
            key=keys.invoices,
            access_logs=access_logs,
            stage=stage,
            lifecycle_rules=[
                colder_with_age(
                    "OlderInvoicesToColderStorage",
                    infrequent_access_after=Duration.days(90),
                    glacier_after=Duration.days(365),
                    noncurrent_kept=None,
                )
            ],
            object_lock=retention,
        )
        # No document is ever replaced: a put must say If-None-Match: * (S3 then refuses it
        # when the key exists), so not even a writer that holds s3:PutObject can put a new
        # version over an issued invoice (billing.store.documents treats the refusal as
        # "stored already").
        self.bucket.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="DocumentsAreWrittenOnce",
                effect=aws_iam.Effect.DENY,
                principals=[aws_iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={"Null": {"s3:if-none-match": "true"}},
            )
        )
        # ... nor hidden: Object Lock keeps versions, not the key, and a delete without a
        # version id would put a marker on top, after which a conditional put succeeds. No
        # principal deletes a document or a version (a dev stack's bucket is emptied by
        # hand, after removing this statement, before it can be deleted).
        self.bucket.add_to_resource_policy(
            aws_iam.PolicyStatement(
                sid="DocumentsAreNeverDeleted",
                effect=aws_iam.Effect.DENY,
                principals=[aws_iam.AnyPrincipal()],
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[self.bucket.arn_for_objects(f"{INVOICE_PREFIX}*")],
            )
        )
        # InvoiceIssued and InvoiceDeliveryFailed, for other systems (ERP, CRM) to follow.
        self.bus = aws_events.EventBus(
            self,
            "DomainEvents",
            description="Usage billing's domain events: InvoiceIssued, InvoiceDeliveryFailed",
            kms_key=key,
        )
        self.configuration_set = aws_ses.ConfigurationSet(
            self,
            "Email",
            reputation_metrics=True,
            sending_enabled=True,
            tls_policy=aws_ses.ConfigurationSetTlsPolicy.REQUIRE,
            suppression_reasons=aws_ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
        )
        self.sender_identity = aws_ses.EmailIdentity(
            self,
            "Sender",
            identity=aws_ses.Identity.email(sender),
            configuration_set=self.configuration_set,
        )

        self.run_bucket = secure_bucket(
            self,
            "InvoiceRuns",
            key=key,
            access_logs=access_logs,
            stage=stage,
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    id="RunFilesAreScratch",
                    expiration=RUN_FILES_KEPT,
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        environment = {
            **ledger.environment(),
            RUN_BUCKET_ENV: self.run_bucket.bucket_name,
            RUN_CONCURRENCY_ENV: str(stage.invoice_run_concurrency),
            INVOICE_BUCKET_ENV: self.bucket.bucket_name,
            INVOICE_KEY_ENV: keys.invoices.key_arn,
            EVENT_BUS_ENV: self.bus.event_bus_name,
            SENDER_ENV: sender,
            SES_CONFIGURATION_SET_ENV: self.configuration_set.configuration_set_name,
            **({SELLER_ENV: stage.seller} if stage.seller else {}),
            # Unset: the functions read the account's rate from SES.
            **(
                {SES_MAX_SEND_RATE_ENV: f"{stage.ses_max_send_rate:g}"}
                if stage.ses_max_send_rate
                else {}
            ),
        }

        def task(construct_id: str, settings: FunctionSettings) -> HandlerFunction:
            return HandlerFunction(
                self,
                construct_id,
                settings=settings,
                layer=layer,
                key=key,
                stage=stage,
                environment=environment,
            )

        # Each task's permissions are what its step (billing.invoicing.due, issue, send,
        # report) calls (stacks/permissions.py): documents only under invoices/, email only
        # as the sender through the configuration set, the run's files only under runs/.
        self.list_due = task("ListDue", LIST_DUE)
        self.issue_invoices = task("IssueInvoices", ISSUE_INVOICES)
        self.send_invoices = task("SendInvoices", SEND_INVOICES)
        self._email_feedback(task, key=key, stage=stage)
        self.report_run = task("ReportRun", REPORT_RUN)
        for handler in (self.issue_invoices, self.send_invoices):
            acknowledge_object_prefix(handler, self.bucket, INVOICE_PREFIX)
            # Replaces the function's X-Ray acknowledgment: these roles have one more '*'.
            acknowledge(
                handler,
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "X-Ray's PutTraceSegments and PutTelemetryRecords, and ses:GetAccount (the "
                "account's sending quota, which the steps pace their emails by), take no "
                "resource-level permissions",
            )
        for handler in (self.list_due, self.report_run):
            acknowledge_object_prefix(handler, self.run_bucket, RUNS_PREFIX)

        self.run_logs = encrypted_log_group(self, "RunLogs", key=key, stage=stage)
        tasks = {
            "ListDueFunction": self.list_due,
            "IssueInvoicesFunction": self.issue_invoices,
            "SendInvoicesFunction": self.send_invoices,
            "ReportRunFunction": self.report_run,
        }
        assert set(tasks) == set(workflows.INVOICE_RUN_FUNCTIONS), "the ASL names other tasks"
        state_machine_name = f"{Stack.of(self).stack_name}-InvoiceRun"
        self.state_machine = aws_stepfunctions.StateMachine(
            self,
            "InvoiceRun",
            comment="Issues and emails the invoices of every (account, period) that is due",
            # Named, so that the key condition CDK writes for the workflow's role
            # (kms:EncryptionContext:aws:states:stateMachineArn) names this state machine.
            state_machine_name=state_machine_name,
            definition_body=aws_stepfunctions.DefinitionBody.from_string(
                workflows.definition_text(workflows.INVOICE_RUN)
            ),
            definition_substitutions={
                **{name: handler.function.function_arn for name, handler in tasks.items()},
                workflows.RUN_BUCKET_VARIABLE: self.run_bucket.bucket_name,
            },
            state_machine_type=aws_stepfunctions.StateMachineType.STANDARD,
            # Execution history (inputs and outputs name accounts, invoice numbers, totals)
            # under the state key; whoever starts or reads an execution needs that key's
            # use through Step Functions (start_invoice_run has it; docs/infrastructure.md).
            encryption_configuration=aws_stepfunctions.CustomerManagedEncryptionConfiguration(key),
            # A month-end run emails at SES's pace (docs/performance.md: a million invoices
            # at 14 emails/s take about 20 hours). A run stopped by this timeout leaves its
            # invoices due, and the next hourly run (none starts while one is going)
            # finishes them.
            timeout=Duration.hours(24),
            tracing_enabled=True,
            logs=aws_stepfunctions.LogOptions(
                destination=self.run_logs,
                level=aws_stepfunctions.LogLevel.ALL,
                # States' inputs and outputs name accounts and failure reasons: logged
                # events say which state ran and how it ended, never the data.
                include_execution_data=False,
            ),
        )
        # The definition names the functions by unqualified ARN, so that is all the
        # workflow may invoke (grant_invoke would add every version and alias, ARN:*).
        self.state_machine.add_to_role_policy(
            aws_iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[handler.function.function_arn for handler in tasks.values()],
            )
        )
        self._distributed_map(state_machine_name, key)
        acknowledge(
            self.state_machine,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "Step Functions' log delivery (logs:CreateLogDelivery and kin) and X-Ray "
            "(xray:PutTraceSegments and kin) take no resource-level permissions",
        )

        self.start_invoice_run = task("StartInvoiceRun", START_INVOICE_RUN)
        self.start_invoice_run.function.add_environment(
            STATE_MACHINE_ENV, self.state_machine.state_machine_arn
        )

        # A scheduled start that never happened lands here: alarmed on.
        self.schedule_failures = failure_queue(self, "ScheduleFailures", key=key, stage=stage)
        # A schedule group of its own, so that the role trusts Scheduler only on behalf of
        # this group's schedules (Scheduler names the group as the aws:SourceArn).
        self.schedule_group = aws_scheduler.ScheduleGroup(
            self, "Schedules", removal_policy=stage.removal_policy
        )
        self.schedule_role = aws_iam.Role(
            self,
            "ScheduleRole",
            assumed_by=aws_iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": Stack.of(self).account,
                        "aws:SourceArn": self.schedule_group.schedule_group_arn,
                    }
                },
            ),
            description="EventBridge Scheduler starts the invoice run with this role",
        )
        # Scheduler invokes the function asynchronously: a start that still fails after
        # Lambda's own retries is kept in the same queue rather than dropped.
        self.start_invoice_run.function.configure_async_invoke(
            on_failure=aws_lambda_destinations.SqsDestination(self.schedule_failures),
            retry_attempts=2,
            max_event_age=Duration.hours(1),
        )
        self.schedule = aws_scheduler.Schedule(
            self,
            "InvoiceRunSchedule",
            description="Starts the invoice run; the run's clock is the scheduled time",
            schedule=aws_scheduler.ScheduleExpression.expression(stage.invoice_run_schedule),
            schedule_group=self.schedule_group,
            key=key,
            target=aws_scheduler_targets.LambdaInvoke(
                self.start_invoice_run.function,
                role=self.schedule_role,
                input=aws_scheduler.ScheduleTargetInput.from_text(SCHEDULE_INPUT),
                retry_attempts=5,
                # A run that could not start within the hour is taken by the next one: it
                # finds every period still due.
                max_event_age=Duration.hours(1),
                dead_letter_queue=self.schedule_failures,
            ),
        )
        # The schedule's target and its dead-letter queue grant through CDK (invoke on every
        # version, the queue's key for any use): replaced by exactly what Scheduler does.
        stack = Stack.of(self)
        self.schedule_role.node.try_remove_child("DefaultPolicy")
        schedule_policy = aws_iam.Policy(
            self,
            "SchedulePermissions",
            roles=[self.schedule_role],
            statements=[
                aws_iam.PolicyStatement(
                    sid="StartTheRun",
                    actions=["lambda:InvokeFunction"],
                    resources=[self.start_invoice_run.function.function_arn],
                ),
                aws_iam.PolicyStatement(
                    sid="KeepWhatCouldNotStart",
                    actions=["sqs:SendMessage"],
                    resources=[self.schedule_failures.queue_arn],
                ),
                aws_iam.PolicyStatement(
                    sid="ScheduleFailuresKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"sqs.{stack.region}.amazonaws.com",
                            "kms:EncryptionContext:aws:sqs:arn": self.schedule_failures.queue_arn,
                        }
                    },
                ),
                aws_iam.PolicyStatement(
                    sid="ScheduleKey",
                    actions=["kms:Decrypt"],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"scheduler.{stack.region}.amazonaws.com"
                        }
                    },
                ),
            ],
        )
        self.schedule.node.add_dependency(schedule_policy)

    def _distributed_map(self, name: str, key: aws_kms.IKey) -> None:
        """What the Batches state does with the workflow's own role: start, watch and stop
        its child executions (one per batch), read the manifest, and write the batches'
        results (RecordBatch, and the ResultWriter's files), in the run bucket only.
        The state machine is named by ARN from its name: its own ARN would be a reference
        from its role's policy back to it, a cycle."""
        stack = Stack.of(self)

        def arn(resource: str, resource_name: str) -> str:
            return stack.format_arn(
                service="states",
                resource=resource,
                resource_name=resource_name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )

        bucket = self.run_bucket
        statements = [
            aws_iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[arn("stateMachine", name)]
            ),
            aws_iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[arn("execution", f"{name}/*")],
            ),
            aws_iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{RUNS_PREFIX}*")],
            ),
            aws_iam.PolicyStatement(
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                ],
                resources=[bucket.arn_for_objects(f"{MAP_RESULTS_PREFIX}*")],
            ),
            aws_iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"},
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [
                            bucket.bucket_arn,
                            bucket.arn_for_objects("*"),
                        ]
                    },
                },
            ),
        ]
        for statement in statements:
            self.state_machine.add_to_role_policy(statement)
        acknowledge(
            self.state_machine,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:"
            f"<AWS::Region>:<AWS::AccountId>:execution:{name}/*]",
            "A Distributed Map's child executions are named by Step Functions: the workflow "
            "may describe and stop the executions of this one state machine",
        )
        for prefix in (RUNS_PREFIX, MAP_RESULTS_PREFIX):
            acknowledge_object_prefix(self.state_machine, bucket, prefix)

    def _email_feedback(
        self,
        task: Callable[[str, FunctionSettings], HandlerFunction],
        *,
        key: aws_kms.IKey,
        stage: Stage,
    ) -> None:
        # SES's deliveries, bounces and complaints of what this configuration set sent: SES
        # publishes them to the account's default bus (the only bus an SES destination
        # takes), and a rule there hands ours to email_events, which records them on the
        # record of the invoice, credit note or adjustment invoice the email's header names.
        # It reads an invoice record and updates it conditionally, and publishes: its
        # permissions are in stacks/permissions.py.
        self.email_events = task("EmailEvents", EMAIL_EVENTS)
        default_bus = aws_events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        aws_ses.ConfigurationSetEventDestination(
            self,
            "EmailFeedback",
            configuration_set=self.configuration_set,
            destination=aws_ses.EventDestination.event_bus(default_bus),
            events=[
                aws_ses.EmailSendingEvent.DELIVERY,
                aws_ses.EmailSendingEvent.BOUNCE,
                aws_ses.EmailSendingEvent.COMPLAINT,
            ],
        )
        self.email_event_failures = failure_queue(self, "EmailEventFailures", key=key, stage=stage)
        # EventBridge invokes asynchronously: an event the function still fails on after
        # Lambda's retries is kept in the failure queue (alarmed), never dropped.
        self.email_events.function.configure_async_invoke(
            on_failure=aws_lambda_destinations.SqsDestination(self.email_event_failures),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
        aws_events.Rule(
            self,
            "EmailFeedbackRule",
            description="SES deliveries, bounces and complaints of billing emails, to email_events",
            event_bus=default_bus,
            event_pattern=aws_events.EventPattern(
                source=["aws.ses"],
                detail_type=["Email Delivered", "Email Bounced", "Email Complaint Received"],
                detail={
                    "mail": {
                        "tags": {
                            "ses:configuration-set": [self.configuration_set.configuration_set_name]
                        }
                    }
                },
            ),
            targets=[aws_events_targets.LambdaFunction(self.email_events.function)],
        )

    def email_identities(self, sender: str) -> list[str]:
        """What SES checks a send against: the sending identity (the address, or its
        verified domain) and the configuration set."""
        stack = Stack.of(self)
        domain = Fn.select(1, Fn.split("@", sender))
        return [
            stack.format_arn(service="ses", resource="identity", resource_name=sender),
            stack.format_arn(service="ses", resource="identity", resource_name=domain),
            stack.format_arn(
                service="ses",
                resource="configuration-set",
                resource_name=self.configuration_set.configuration_set_name,
            ),
        ]
