//! Real packet loss between cluster nodes on one machine: iptables rules on the loopback
//! traffic of the nodes' cluster ports (libp2p TCP and gossip UDP share the port), told apart
//! by the user a process runs as (nodes dial from 127.0.0.1 whatever their own address, so
//! addresses cannot tell them apart). Made by the test, removed when the guard drops.
#![allow(dead_code)]

use std::process::Command;

/// The user the isolated node runs as.
pub const ISOLATED_UID: u32 = 65534;

/// Rules that cut one node (running as [`ISOLATED_UID`]) off from the others' cluster ports
/// and the others off from its cluster port, until dropped.
pub struct Partition {
    /// Marks this partition's rules, so exactly they are removed.
    comment: String,
}

fn iptables(args: &[&str]) -> bool {
    Command::new("iptables")
        .args(args)
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

impl Partition {
    /// Cuts the node on `isolated` (its cluster port) off from the nodes on `others`.
    pub fn isolate(isolated: u16, others: &[u16]) -> Partition {
        assert!(
            iptables(&["-L", "OUTPUT", "-n"]),
            "the partition tests need iptables and root (tests/setup-system.sh installs it)"
        );
        let comment = format!("cameodb-test-{}-{isolated}", std::process::id());
        let partition = Partition { comment };
        let uid = ISOLATED_UID.to_string();
        let isolated = isolated.to_string();
        for proto in ["tcp", "udp"] {
            for port in others {
                let port = port.to_string();
                // What the isolated node sends to the others.
                partition.add(&[
                    "-m",
                    "owner",
                    "--uid-owner",
                    &uid,
                    "-p",
                    proto,
                    "--dport",
                    &port,
                ]);
            }
            // What the others send to it.
            partition.add(&[
                "-m",
                "owner",
                "!",
                "--uid-owner",
                &uid,
                "-p",
                proto,
                "--dport",
                &isolated,
            ]);
        }
        partition
    }

    fn add(&self, rule: &[&str]) {
        let mut args = vec!["-I", "OUTPUT"];
        args.extend_from_slice(rule);
        args.extend_from_slice(&["-m", "comment", "--comment", &self.comment, "-j", "DROP"]);
        assert!(iptables(&args), "iptables {args:?} failed");
    }

    /// Removes the rules: the network heals.
    pub fn heal(self) {}
}

impl Drop for Partition {
    fn drop(&mut self) {
        // Until none is left: a listing taken while rules change may miss some.
        for _ in 0..20 {
            let Ok(listing) = Command::new("iptables").args(["-S", "OUTPUT"]).output() else {
                return;
            };
            let ours: Vec<String> = String::from_utf8_lossy(&listing.stdout)
                .lines()
                .filter(|line| line.contains(&self.comment))
                .map(String::from)
                .collect();
            if ours.is_empty() {
                return;
            }
            for line in ours {
                // "-A OUTPUT <rule>" becomes "-D OUTPUT <rule>"; the comment has no spaces, so
                // splitting on whitespace keeps every argument whole.
                let args: Vec<&str> = line
                    .split_whitespace()
                    .map(|a| if a == "-A" { "-D" } else { a.trim_matches('"') })
                    .collect();
                iptables(&args);
            }
        }
    }
}
