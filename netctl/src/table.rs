//! Tab-aligned tables exactly as Contiv's netctl prints them: Go's `text/tabwriter` with
//! minwidth 0, padding 2 and spaces (`tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)`).
//!
//! Text is cells terminated by `\t`, lines by `\n`. A column's width is its widest cell plus the
//! padding, computed over a block of consecutive lines that all have that column; the last cell
//! of a line is not tab-terminated and does not take part in alignment.

const MIN_WIDTH: usize = 0;
const PADDING: usize = 2;

/// Formats tab-separated text the way Go's tabwriter does with Contiv's settings.
pub fn render(text: &str) -> String {
    let terminated = text.ends_with('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::new();
    format_block(&lines, &mut Vec::new(), 0, lines.len(), &mut out);
    if !terminated {
        // An unterminated last line gets no newline, as in Go.
        out.pop();
    }
    out
}

fn cell_width(cell: &str) -> usize {
    cell.chars().count()
}

/// Go's `Writer.format`: finds the blocks of lines that have cell `widths.len()`, sizes that
/// column per block, and recurses into the columns to its right.
fn format_block(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    first: usize,
    end: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut printed_to = first;
    let mut this = first;
    while this < end {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, widths, printed_to, this, out);
        let block_start = this;
        let mut width = MIN_WIDTH;
        while this < end && column + 1 < lines[this].len() {
            width = width.max(cell_width(lines[this][column]) + PADDING);
            this += 1;
        }
        widths.push(width);
        format_block(lines, widths, block_start, this, out);
        widths.pop();
        printed_to = this;
    }
    write_lines(lines, widths, printed_to, end, out);
}

fn write_lines(lines: &[Vec<&str>], widths: &[usize], first: usize, end: usize, out: &mut String) {
    for line in &lines[first..end] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(width) = widths.get(j) {
                let pad = width.saturating_sub(cell_width(cell));
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
}

/// Builds tabwriter input from a header and rows (each row one `\t`-joined line).
pub struct Table {
    text: String,
}

impl Table {
    /// A table that starts with free lines (e.g. a section title) rather than a header.
    pub fn empty() -> Table {
        Table {
            text: String::new(),
        }
    }

    /// Header line and its dashes line, written exactly as given (Contiv's spelling).
    pub fn new(header: &str, dashes: &str) -> Table {
        Table {
            text: format!("{header}\n{dashes}\n"),
        }
    }

    /// A line of text in the table's flow, e.g. a section title.
    pub fn line(&mut self, text: &str) -> &mut Table {
        self.text.push_str(text);
        self.text.push('\n');
        self
    }

    /// One row: the cells joined by tabs.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) -> &mut Table {
        let cells: Vec<&str> = cells.iter().map(AsRef::as_ref).collect();
        self.line(&cells.join("\t"))
    }

    pub fn render(&self) -> String {
        render(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_with_two_spaces_of_padding() {
        let text = "Tenant\tPolicy\n------\t------\ndefault\tdb-policy\n";
        assert_eq!(
            render(text),
            "Tenant   Policy\n------   ------\ndefault  db-policy\n"
        );
    }

    #[test]
    fn last_cell_is_not_padded_and_trailing_empty_cells_pad() {
        // Contiv's tenant list: "Name\t\n" pads the name column, the empty last cell adds nothing.
        let text = "Name\t\n------\t\nblue\t\n";
        assert_eq!(render(text), "Name    \n------  \nblue    \n");
    }

    #[test]
    fn a_single_cell_line_ends_the_column_blocks() {
        let text = "Incoming Rules:\na\tbb\n----\t--\nOutgoing Rules:\nlonger-id\tx\n";
        assert_eq!(
            render(text),
            "Incoming Rules:\na     bb\n----  --\nOutgoing Rules:\nlonger-id  x\n"
        );
    }

    #[test]
    fn shorter_lines_split_blocks_of_inner_columns() {
        // Column 1 exists in lines 0 and 2 only; line 1 has a single tab-terminated cell.
        let text = "a\tbbbb\tc\nxx\ty\nz\tq\tr\n";
        assert_eq!(render(text), "a   bbbb  c\nxx  y\nz   q  r\n");
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(render("é\tx\nab\ty\n"), "é   x\nab  y\n");
    }

    #[test]
    fn unterminated_last_line_has_no_newline() {
        assert_eq!(render("a\tb\ncc\td"), "a   b\ncc  d");
    }

    #[test]
    fn table_builder() {
        let mut t = Table::new("Tenant\tNetwork", "------\t-------");
        t.row(&["blue", "contiv-net"]);
        assert_eq!(
            t.render(),
            "Tenant  Network\n------  -------\nblue    contiv-net\n"
        );
    }
}
