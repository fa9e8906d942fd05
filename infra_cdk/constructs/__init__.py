"""One Construct per deployable unit; `infra_cdk.stacks.trainset_stack` wires them together."""
