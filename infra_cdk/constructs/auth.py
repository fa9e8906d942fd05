"""Cognito: who may label. Administrators create every account (no self sign-up).

A coder signs in on the hosted UI with the authorization-code grant and PKCE (a public client:
no client secret in the static page). The coder row's `name` in the database must equal the
Cognito username; managers are also members of the `managers` group (`cognito:groups` claim).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra_cdk.nag import acknowledge

CODERS_GROUP = "coders"
MANAGERS_GROUP = "managers"


class Auth(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        callback_urls: Sequence[str],
        logout_urls: Sequence[str],
        plus_tier: bool,
        deletion_protection: bool,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"trainset-{env_name}",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True),
            sign_in_case_sensitive=True,
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            feature_plan=cognito.FeaturePlan.PLUS if plus_tier else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=(
                cognito.StandardThreatProtectionMode.FULL_FUNCTION if plus_tier else None
            ),
            user_invitation=cognito.UserInvitationConfig(
                email_subject="Your trainset labeling account",
                email_body=(
                    "Hello {username}, your trainset account is ready. "
                    "Your temporary password is {####} (valid for 3 days)."
                ),
            ),
            deletion_protection=deletion_protection,
            removal_policy=removal_policy,
        )

        self.groups = {
            name: self.user_pool.add_group(
                name.capitalize(), group_name=name, description=description, precedence=rank
            )
            for rank, (name, description) in enumerate(
                [
                    (MANAGERS_GROUP, "Run campaigns, review coders and quality, export data"),
                    (CODERS_GROUP, "Label posts"),
                ]
            )
        }

        # Hosted UI on an Amazon Cognito domain; the account id keeps the prefix unique.
        self.domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=Fn.join("-", ["trainset", env_name, Aws.ACCOUNT_ID])
            ),
        )

        self.client = self.user_pool.add_client(
            "WebClient",
            user_pool_client_name=f"trainset-{env_name}-web",
            generate_secret=False,  # public client: the code grant is protected by PKCE
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False),
                scopes=[
                    cognito.OAuthScope.OPENID,
                    cognito.OAuthScope.EMAIL,
                    cognito.OAuthScope.PROFILE,
                ],
                callback_urls=list(callback_urls),
                logout_urls=list(logout_urls),
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(7),
        )

        acknowledge(
            self.user_pool,
            "COG2",
            "MFA is optional (TOTP), not required: coders are short-term research assistants "
            "whose accounts an administrator creates; self sign-up is off and passwords are "
            "strong. Managers are asked to enrol TOTP (infra_cdk/README.md).",
        )
        if not plus_tier:
            acknowledge(
                self.user_pool,
                "COG8",
                "Essentials tier in this environment (dev) to save cost; threat protection "
                "(Plus tier, full function) is on in prod.",
            )

    @property
    def user_pool_arn(self) -> str:
        return self.user_pool.user_pool_arn

    @property
    def hosted_ui_base_url(self) -> str:
        return self.domain.base_url()
