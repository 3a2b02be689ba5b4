//! Results as tables: printed as markdown (for BENCHMARKS.md) and saved as JSON.

use serde_json::{Map, Value, json};

/// One table of the report.
pub struct Table {
    /// Heading, e.g. "Durable bulk ingest over HTTP".
    pub title: String,
    /// Column names; the first column labels the row.
    pub columns: Vec<String>,
    /// Cells, one `Value` per column (numbers stay numbers in the JSON).
    pub rows: Vec<Vec<Value>>,
    /// Text under the table: how it was measured.
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: &str, columns: &[&str]) -> Table {
        Table {
            title: title.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Value>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }
}

/// The whole run.
#[derive(Default)]
pub struct Report {
    /// Machine, command, corpus: printed above the tables.
    pub header: Vec<(String, String)>,
    pub tables: Vec<Table>,
}

fn cell(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.abs() < 10.0 => format!("{f:.2}"),
            Some(f) if n.is_f64() && f.abs() < 1000.0 => format!("{f:.1}"),
            Some(f) if n.is_f64() => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Null => "—".to_string(),
        other => other.to_string(),
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.header {
            out.push_str(&format!("- {key}: {value}\n"));
        }
        for table in &self.tables {
            out.push_str(&format!("\n### {}\n\n", table.title));
            out.push_str(&format!("| {} |\n", table.columns.join(" | ")));
            let align: Vec<&str> = (0..table.columns.len())
                .map(|i| if i == 0 { "---" } else { "---:" })
                .collect();
            out.push_str(&format!("|{}|\n", align.join("|")));
            for row in &table.rows {
                let cells: Vec<String> = row.iter().map(cell).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            if !table.notes.is_empty() {
                out.push('\n');
                for note in &table.notes {
                    out.push_str(&format!("{note}\n"));
                }
            }
        }
        out
    }

    pub fn json(&self) -> Value {
        let header: Map<String, Value> = self
            .header
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let tables: Vec<Value> = self
            .tables
            .iter()
            .map(|t| {
                let rows: Vec<Value> = t
                    .rows
                    .iter()
                    .map(|row| {
                        Value::Object(t.columns.iter().cloned().zip(row.iter().cloned()).collect())
                    })
                    .collect();
                json!({"title": t.title, "rows": rows, "notes": t.notes})
            })
            .collect();
        json!({"header": header, "tables": tables})
    }
}

/// A float cell rounded for reading (JSON keeps it a number).
pub fn num(value: f64) -> Value {
    json!(value)
}
