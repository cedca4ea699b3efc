//! `netctl endpoint|ep inspect`: an endpoint written by an agent.

use super::inspect;
use crate::cli::EndpointCmd;
use crate::client::Client;
use fabric_model::Endpoint;

pub fn run(client: &Client, cmd: EndpointCmd) -> anyhow::Result<()> {
    match cmd {
        EndpointCmd::Inspect(args) => inspect::<Endpoint>(client, &args.name),
    }
}
