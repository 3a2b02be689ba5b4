//! A computed value source for tantivy's aggregations: each value of one fast column mapped to
//! at most one value of another type. Distances, coordinates, grid cells and calendar periods
//! are all such maps; each registers one under a name that spells its parameters.

use std::sync::Arc;

use tantivy::DocId;
use tantivy::SegmentReader;
use tantivy::aggregation::{ValueSource, ValueSourceProvider};
use tantivy::columnar::{Cardinality, Column, ColumnType, RowId};

/// What a raw column value becomes (`None`: the value is left out).
pub(crate) type Map = Arc<dyn Fn(u64) -> Option<u64> + Send + Sync>;

/// The provider: opens `column` (of type `input`) in each segment.
pub(crate) struct Mapped {
    /// The fast column read (`_exact.<path>`).
    pub(crate) column: String,
    /// Its type.
    pub(crate) input: ColumnType,
    /// The type of the mapped values.
    pub(crate) output: ColumnType,
    /// The map.
    pub(crate) map: Map,
}

struct SegmentMapped {
    values: Column<u64>,
    output: ColumnType,
    map: Map,
}

impl std::fmt::Debug for SegmentMapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentMapped")
            .field("output", &self.output)
            .finish()
    }
}

impl ValueSource for SegmentMapped {
    fn column_type(&self) -> ColumnType {
        self.output
    }

    fn load_block(
        &mut self,
        docs: &[DocId],
        values: &mut Vec<u64>,
        docids: &mut Vec<DocId>,
        _row_ids: &mut Vec<RowId>,
    ) -> Cardinality {
        values.clear();
        docids.clear();
        for &doc in docs {
            for raw in self.values.values_for_doc(doc) {
                if let Some(value) = (self.map)(raw) {
                    values.push(value);
                    docids.push(doc);
                }
            }
        }
        Cardinality::Multivalued
    }

    fn to_f64(self: Box<Self>) -> Box<dyn ValueSource> {
        self
    }
}

impl ValueSourceProvider for Mapped {
    fn for_segment(
        &self,
        reader: &SegmentReader,
        _allowed: Option<&[ColumnType]>,
    ) -> tantivy::Result<Option<Box<dyn ValueSource>>> {
        let opened = reader
            .fast_fields()
            .u64_lenient_for_type(Some(&[self.input]), &self.column)?;
        Ok(opened.map(|(values, _)| {
            Box::new(SegmentMapped {
                values,
                output: self.output,
                map: Arc::clone(&self.map),
            }) as Box<dyn ValueSource>
        }))
    }
}
