"""AWS CDK app for trainset. Never imports the `trainset` package itself."""
