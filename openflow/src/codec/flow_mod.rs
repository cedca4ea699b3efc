//! FLOW_MOD (add, modify, delete, strict or not) and the instruction list it carries
//! (apply-actions, goto-table), shared with flow-stats replies.

use super::action::{decode_actions, encode_actions};
use super::error::{DecodeError, EncodeError};
use super::oxm::{decode_match, encode_match};
use super::wire::{patch_u16, Reader};
use crate::flow::{port, Action, Flow, FlowKey, Match};

const OFPIT_GOTO_TABLE: u16 = 1;
const OFPIT_APPLY_ACTIONS: u16 = 4;
/// "No buffered packet" in `buffer_id`.
const OFP_NO_BUFFER: u32 = 0xffff_ffff;
/// "Any group" in `out_group`.
pub const OFPG_ANY: u32 = 0xffff_ffff;
/// "All tables" in deletes and flow-stats requests.
pub const OFPTT_ALL: u8 = 0xff;

/// What a FLOW_MOD does. The strict forms address exactly one flow by table, priority and
/// match; the others every flow the match covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowModCommand {
    Add = 0,
    Modify = 1,
    ModifyStrict = 2,
    Delete = 3,
    DeleteStrict = 4,
}

impl FlowModCommand {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Add,
            1 => Self::Modify,
            2 => Self::ModifyStrict,
            3 => Self::Delete,
            4 => Self::DeleteStrict,
            _ => return None,
        })
    }
}

/// An OpenFlow 1.3 FLOW_MOD in terms of the flow model.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowMod {
    pub command: FlowModCommand,
    /// For add: the new flow's cookie. For modify/delete: with `cookie_mask`, restricts the
    /// flows touched to those whose cookie matches (`flow.cookie & mask == cookie & mask`).
    pub cookie: u64,
    pub cookie_mask: u64,
    /// For non-strict deletes, [`OFPTT_ALL`] means every table.
    pub table: u8,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    /// `OFPFF_*` flags.
    pub flags: u16,
    /// Deletes only: restrict to flows that output to this port ([`port::ANY`] for all).
    pub out_port: u32,
    pub out_group: u32,
    pub matches: Match,
    pub actions: Vec<Action>,
    pub goto_table: Option<u8>,
}

impl FlowMod {
    fn base(command: FlowModCommand, table: u8, priority: u16, matches: Match) -> Self {
        Self {
            command,
            cookie: 0,
            cookie_mask: 0,
            table,
            priority,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            out_port: port::ANY,
            out_group: OFPG_ANY,
            matches,
            actions: Vec::new(),
            goto_table: None,
        }
    }

    /// Adds `flow` (replacing a flow with the same key, whatever its cookie).
    pub fn add(flow: &Flow) -> Self {
        Self {
            cookie: flow.cookie,
            actions: flow.actions.clone(),
            goto_table: flow.goto_table,
            ..Self::base(
                FlowModCommand::Add,
                flow.table,
                flow.priority,
                flow.matches.clone(),
            )
        }
    }

    /// Replaces the instructions of the flow with `flow`'s key, if its cookie matches
    /// `flow.cookie` under `cookie_mask` (the flow's cookie itself is left unchanged).
    pub fn modify_strict(flow: &Flow, cookie_mask: u64) -> Self {
        Self {
            cookie_mask,
            command: FlowModCommand::ModifyStrict,
            ..Self::add(flow)
        }
    }

    /// Deletes the flow with `key`, if its cookie matches `cookie` under `cookie_mask`.
    pub fn delete_strict(key: &FlowKey, cookie: u64, cookie_mask: u64) -> Self {
        Self {
            cookie,
            cookie_mask,
            ..Self::base(
                FlowModCommand::DeleteStrict,
                key.table,
                key.priority,
                key.matches.clone(),
            )
        }
    }

    /// Deletes every flow (in `table`, or all tables) whose cookie matches under the mask.
    pub fn delete_cookie(table: Option<u8>, cookie: u64, cookie_mask: u64) -> Self {
        Self {
            cookie,
            cookie_mask,
            ..Self::base(
                FlowModCommand::Delete,
                table.unwrap_or(OFPTT_ALL),
                0,
                Match::default(),
            )
        }
    }

    /// The flow this FLOW_MOD describes (for reports: "this flow was refused").
    pub fn flow(&self) -> Flow {
        Flow {
            table: self.table,
            priority: self.priority,
            matches: self.matches.clone(),
            actions: self.actions.clone(),
            goto_table: self.goto_table,
            cookie: self.cookie,
        }
    }
}

/// Appends the instruction list for `actions` and `goto_table` (empty: the flow drops).
pub(crate) fn encode_instructions(
    buf: &mut Vec<u8>,
    actions: &[Action],
    goto_table: Option<u8>,
) -> Result<(), EncodeError> {
    if !actions.is_empty() {
        let start = buf.len();
        buf.extend_from_slice(&OFPIT_APPLY_ACTIONS.to_be_bytes());
        buf.extend_from_slice(&[0; 6]);
        encode_actions(buf, actions)?;
        let len = buf.len() - start;
        patch_u16(buf, start + 2, len)?;
    }
    if let Some(t) = goto_table {
        buf.extend_from_slice(&OFPIT_GOTO_TABLE.to_be_bytes());
        buf.extend_from_slice(&8u16.to_be_bytes());
        buf.extend_from_slice(&[t, 0, 0, 0]);
    }
    Ok(())
}

/// Reads an instruction list that fills `r`.
pub(crate) fn decode_instructions(
    r: &mut Reader<'_>,
) -> Result<(Vec<Action>, Option<u8>), DecodeError> {
    let mut actions: Option<Vec<Action>> = None;
    let mut goto = None;
    while !r.is_empty() {
        let itype = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len % 8 != 0 {
            return Err(DecodeError::BadLength {
                what: "instruction",
                len,
                min: 8,
                max: 65528,
            });
        }
        let mut body = r.sub(len - 4, "instruction")?;
        match itype {
            OFPIT_APPLY_ACTIONS if actions.is_none() => {
                body.skip(4)?;
                actions = Some(decode_actions(&mut body)?);
            }
            OFPIT_GOTO_TABLE if goto.is_none() => goto = Some(body.u8()?),
            OFPIT_APPLY_ACTIONS | OFPIT_GOTO_TABLE => {
                return Err(DecodeError::DuplicateInstruction(itype))
            }
            other => return Err(DecodeError::UnsupportedInstruction(other)),
        }
    }
    Ok((actions.unwrap_or_default(), goto))
}

/// Appends the FLOW_MOD body (everything after the OpenFlow header).
pub(crate) fn encode_flow_mod(buf: &mut Vec<u8>, fm: &FlowMod) -> Result<(), EncodeError> {
    buf.extend_from_slice(&fm.cookie.to_be_bytes());
    buf.extend_from_slice(&fm.cookie_mask.to_be_bytes());
    buf.push(fm.table);
    buf.push(fm.command as u8);
    buf.extend_from_slice(&fm.idle_timeout.to_be_bytes());
    buf.extend_from_slice(&fm.hard_timeout.to_be_bytes());
    buf.extend_from_slice(&fm.priority.to_be_bytes());
    buf.extend_from_slice(&OFP_NO_BUFFER.to_be_bytes());
    buf.extend_from_slice(&fm.out_port.to_be_bytes());
    buf.extend_from_slice(&fm.out_group.to_be_bytes());
    buf.extend_from_slice(&fm.flags.to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    encode_match(buf, &fm.matches)?;
    match fm.command {
        FlowModCommand::Delete | FlowModCommand::DeleteStrict => Ok(()),
        _ => encode_instructions(buf, &fm.actions, fm.goto_table),
    }
}

/// Reads a FLOW_MOD body.
pub(crate) fn decode_flow_mod(r: &mut Reader<'_>) -> Result<FlowMod, DecodeError> {
    let cookie = r.u64()?;
    let cookie_mask = r.u64()?;
    let table = r.u8()?;
    let cmd = r.u8()?;
    let command = FlowModCommand::from_u8(cmd).ok_or(DecodeError::BadCommand(cmd))?;
    let idle_timeout = r.u16()?;
    let hard_timeout = r.u16()?;
    let priority = r.u16()?;
    let _buffer_id = r.u32()?;
    let out_port = r.u32()?;
    let out_group = r.u32()?;
    let flags = r.u16()?;
    r.skip(2)?;
    let matches = decode_match(r)?;
    let (actions, goto_table) = decode_instructions(r)?;
    Ok(FlowMod {
        command,
        cookie,
        cookie_mask,
        table,
        priority,
        idle_timeout,
        hard_timeout,
        flags,
        out_port,
        out_group,
        matches,
        actions,
        goto_table,
    })
}
