"""Operations tooling for cloud fleets: the ephemeral-fleet driver and the AWS reaper."""
