import pytest

from fetalhc.pixel_size_csv import lookup, read_pixel_size_csv


def test_hc18_format(tmp_path):
    p = tmp_path / "px.csv"
    p.write_bytes(b"filename,pixel size(mm),head circumference (mm)\r\n000_HC.png,0.0691358041432,44.3\r\n")
    t = read_pixel_size_csv(p)
    assert t["000_HC.png"].pixel_size_mm == pytest.approx(0.0691358041432)
    assert lookup(t, "000_HC.png").ga_weeks is None


def test_plain_two_columns_without_header(tmp_path):
    p = tmp_path / "px.csv"
    p.write_text("a.png,0.1\nsub/b.jpg,0.2\n")
    t = read_pixel_size_csv(p)
    assert lookup(t, "a.png").pixel_size_mm == 0.1
    assert lookup(t, "b.jpg").pixel_size_mm == 0.2
    assert lookup(t, "b").pixel_size_mm == 0.2  # by stem
    assert lookup(t, "c.png") is None


def test_header_with_gestational_age(tmp_path):
    p = tmp_path / "px.csv"
    p.write_text("filename,pixel_size_mm,ga_weeks\nx.dcm,0.15,22.5\n")
    e = lookup(read_pixel_size_csv(p), "x.dcm#frame 3")
    assert e.pixel_size_mm == 0.15 and e.ga_weeks == 22.5


def test_bad_value_names_file_and_line(tmp_path):
    p = tmp_path / "px.csv"
    p.write_text("filename,pixel_size_mm\na.png,0.1\nb.png,-3\n")
    with pytest.raises(ValueError, match=r"px.csv: line 3"):
        read_pixel_size_csv(p)


def test_missing_pixel_column(tmp_path):
    p = tmp_path / "px.csv"
    p.write_text("filename,size\na.png,x\n")
    with pytest.raises(ValueError, match="no pixel-size column"):
        read_pixel_size_csv(p)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        read_pixel_size_csv(tmp_path / "none.csv")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_pixel_size_csv(tmp_path / "e.csv")
