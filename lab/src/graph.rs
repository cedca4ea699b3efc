//! `lab graph`: the topology as Graphviz dot (nodes with kind and management address, links with
//! their interface names at each end). Pure; the CLI writes the file and runs `dot` for a PNG.

use crate::topology::Topology;

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

pub fn to_dot(topo: &Topology) -> String {
    let mut out = format!(
        "graph {} {{\n  layout=dot;\n  node [shape=box, style=rounded];\n",
        quote(&topo.name)
    );
    for node in &topo.nodes {
        out.push_str(&format!(
            "  {} [label={}];\n",
            quote(&node.name),
            quote(&format!(
                "{}\\n{}\\n{}",
                node.name,
                node.kind.name(),
                node.mgmt_ipv4
            ))
        ));
    }
    for link in &topo.links {
        out.push_str(&format!(
            "  {} -- {} [taillabel={}, headlabel={}];\n",
            quote(&link.a.node),
            quote(&link.b.node),
            quote(&link.a.iface),
            quote(&link.b.iface)
        ));
    }
    out.push_str("}\n");
    out
}
