#!/usr/bin/env python3
"""Generate a national-scale CCTV standard data file for the import benchmark.

About 250,000 installation sites making about 1.6 million cameras, in CP949 with CRLF line
ends, in the 14-column layout of the national standard data (번호, 관리기관명, ...
WGS84위도, WGS84경도, 데이터기준일자), with the blemishes of the published files
(tests/data/cctv/README.md): blank, zero, sentinel, out-of-country and swapped coordinates,
exact duplicate rows, odd dates (1900, future, Excel's "11-Dec", YYYYMM), padded cells and
ideographic spaces, multi-line quoted cells, tabs inside cells, thousands separators inside
quotes, camera counts 0 and 104, megapixel cells "41" beside "200", and repeated sites (the
publishers that list one camera per row). Deterministic for a given --seed.

usage: gen.py [--rows N] [--seed S] OUT.csv
"""
import argparse
import csv
import io
import random

CITIES = [
    ("서울특별시", 37.5665, 126.9780, ["종로구", "중구", "용산구", "성동구", "광진구", "동대문구",
                                 "중랑구", "성북구", "강북구", "도봉구", "노원구", "은평구",
                                 "서대문구", "마포구", "양천구", "강서구", "구로구", "금천구",
                                 "영등포구", "동작구", "관악구", "서초구", "강남구", "송파구",
                                 "강동구"]),
    ("부산광역시", 35.1796, 129.0756, ["중구", "서구", "동구", "영도구", "부산진구", "동래구",
                                 "남구", "북구", "해운대구", "사하구", "금정구", "강서구",
                                 "연제구", "수영구", "사상구", "기장군"]),
    ("대구광역시", 35.8714, 128.6014, ["중구", "동구", "서구", "남구", "북구", "수성구", "달서구",
                                 "달성군"]),
    ("인천광역시", 37.4563, 126.7052, ["중구", "동구", "미추홀구", "연수구", "남동구", "부평구",
                                 "계양구", "서구", "강화군", "옹진군"]),
    ("광주광역시", 35.1595, 126.8526, ["동구", "서구", "남구", "북구", "광산구"]),
    ("대전광역시", 36.3504, 127.3845, ["동구", "중구", "서구", "유성구", "대덕구"]),
    ("울산광역시", 35.5384, 129.3114, ["중구", "남구", "동구", "북구", "울주군"]),
    ("경기도", 37.4138, 127.5183, ["수원시", "성남시", "고양시", "용인시", "부천시", "안산시",
                                "안양시", "남양주시", "화성시", "평택시", "의정부시", "시흥시",
                                "파주시", "김포시", "광명시", "광주시", "군포시", "하남시",
                                "오산시", "이천시", "안성시", "의왕시", "양주시", "포천시",
                                "여주시", "동두천시", "과천시", "구리시", "가평군", "양평군",
                                "연천군"]),
    ("강원특별자치도", 37.8228, 128.1555, ["춘천시", "원주시", "강릉시", "동해시", "속초시",
                                      "삼척시", "태백시", "홍천군", "횡성군", "영월군"]),
    ("충청북도", 36.6357, 127.4917, ["청주시", "충주시", "제천시", "보은군", "옥천군", "영동군",
                                 "진천군", "괴산군", "음성군", "단양군"]),
    ("충청남도", 36.5184, 126.8000, ["천안시", "공주시", "보령시", "아산시", "서산시", "논산시",
                                 "계룡시", "당진시", "금산군", "부여군", "서천군", "홍성군"]),
    ("전북특별자치도", 35.7175, 127.1530, ["전주시", "군산시", "익산시", "정읍시", "남원시",
                                      "김제시", "완주군", "진안군", "무주군", "고창군"]),
    ("전라남도", 34.8161, 126.4629, ["목포시", "여수시", "순천시", "나주시", "광양시", "담양군",
                                 "곡성군", "구례군", "고흥군", "보성군", "해남군", "완도군"]),
    ("경상북도", 36.4919, 128.8889, ["포항시", "경주시", "김천시", "안동시", "구미시", "영주시",
                                 "영천시", "상주시", "문경시", "경산시", "칠곡군", "울진군"]),
    ("경상남도", 35.4606, 128.2132, ["창원시", "진주시", "통영시", "사천시", "김해시", "밀양시",
                                 "거제시", "양산시", "함안군", "창녕군", "고성군", "남해군"]),
    ("제주특별자치도", 33.4996, 126.5312, ["제주시", "서귀포시"]),
]
PURPOSES = ["생활방범"] * 40 + ["다목적"] * 20 + ["어린이보호"] * 10 + ["교통단속"] * 6 + \
    ["쓰레기단속"] * 6 + ["시설물관리"] * 5 + ["재난재해"] * 4 + ["차량방범"] * 3 + \
    ["교통정보수집"] * 2 + ["생활안전", "도시공원", "기타"]
DIRECTIONS = [""] * 40 + ["360도 전방면"] * 10 + ["고정"] * 7 + ["360도다방면"] * 6 + \
    ["90도 정면"] * 5 + ["360도 전방향"] * 5 + ["회전"] * 5 + ["360"] * 4 + ["360°"] * 3 + \
    ["60도 단방향"] * 2 + ["130", "반경 2~3m", "특정방면", "주택 앞 삼거리", "북측", "남동",
                       "계단 진입로 방면", "170도 방면", "회전(열화상)"]
PIXELS = ["200"] * 70 + ["0"] * 12 + ["300", "130", "500", "800", "400", "41", "210", ""]
ROADS = ["중앙로", "시청로", "공원로", "학교길", "시장길", "역전로", "강변로", "문화로", "번영로",
         "평화로", "대학로", "산업로", "새마을로", "동서로", "남북로", "희망길", "행복로"]
DONGS = ["중앙동", "신흥동", "대흥동", "문화동", "산성동", "신월동", "송정동", "도화동", "금곡동",
         "장안동", "용두동", "청룡동"]
# Cameras per site: mean about 6.4, so that 250,000 sites make about 1.6 million cameras.
COUNTS = [1] * 14 + [2] * 10 + [3] * 8 + [4] * 8 + [5] * 8 + [6] * 8 + [7] * 7 + [8] * 7 + \
    [9] * 6 + [10] * 6 + [12] * 5 + [14] * 5 + [16] * 4 + [20] * 4


def site_row(rng, n):
    city, lat0, lon0, districts = rng.choice(CITIES)
    district = rng.choice(districts)
    suffix = "군청" if district.endswith("군") else "시청" if district.endswith("시") else "청"
    agency = f"{city} {district[:-1] if suffix != '청' else district}{suffix}"
    road = f"{city} {district} {rng.choice(ROADS)}{rng.randint(1, 300)}번길 {rng.randint(1, 200)}"
    lot = f"{city} {district} {rng.choice(DONGS)} {rng.randint(1, 1500)}-{rng.randint(1, 99)}"
    lat = f"{lat0 + rng.uniform(-0.12, 0.12):.8f}"
    lon = f"{lon0 + rng.uniform(-0.12, 0.12):.7f}"
    year = rng.randint(2005, 2025)
    month = rng.randint(1, 12)
    installed = f"{year}-{month:02d}" if rng.random() < 0.7 else f"{year}{month:02d}"
    if rng.random() < 0.35:
        installed = ""
    phone = f"0{rng.randint(2, 64)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
    row = [str(n), agency, road, lot, rng.choice(PURPOSES), str(rng.choice(COUNTS)),
           rng.choice(PIXELS), rng.choice(DIRECTIONS), rng.choice(["30", "30", "30", "0", "7"]),
           installed, phone, lat, lon, "2024-07-19"]
    return row


def blemish(rng, row):
    """Spoils a row the ways published rows are spoiled."""
    r = rng.random()
    if r < 0.04:
        row[11], row[12] = "", ""
    elif r < 0.05:
        row[11], row[12] = "0", "0"
    elif r < 0.055:
        row[11], row[12] = "99.999999", "999.999999"
    elif r < 0.06:
        row[11], row[12] = row[12], row[11]
    elif r < 0.062:
        row[11] = "30.072746"
    r = rng.random()
    if r < 0.003:
        row[9] = "1900"
    elif r < 0.005:
        row[9] = "11-Dec"
    elif r < 0.006:
        row[9] = "2031-02"
    r = rng.random()
    if r < 0.002:
        row[5] = "0"
    elif r < 0.0025:
        row[5] = "104"
    elif r < 0.004:
        row[5] = ""
    r = rng.random()
    if r < 0.03:
        row[1] = "  " + row[1] + " "
    elif r < 0.04:
        row[2] = "\u3000" + row[2]
    elif r < 0.045:
        row[7] = "행복빌라 삼거리\n(나루터식당 옆)"
    elif r < 0.05:
        row[3] = row[3].replace(" ", "\t", 1)
    elif r < 0.052:
        row[6] = "2,073,600"
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=250000)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("out")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["번호", "관리기관명", "소재지도로명주소", "소재지지번주소", "설치목적구분", "카메라대수",
                "카메라화소수", "촬영방면정보", "보관일수", "설치연월", "관리기관전화번호", "WGS84위도",
                "WGS84경도", "데이터기준일자"])
    rows = []
    n = 0
    while len(rows) < a.rows:
        n += 1
        r = rng.random()
        if rows and r < 0.004:
            rows.append(list(rng.choice(rows[-1000:])))  # an exact duplicate row
            continue
        row = blemish(rng, site_row(rng, n))
        rows.append(row)
        if rng.random() < 0.02:  # the same site again, one camera per row, own number
            n += 1
            again = list(row)
            again[0] = str(n)
            rows.append(again)
    for row in rows[:a.rows]:
        w.writerow(row)
    with open(a.out, "wb") as f:
        f.write(buf.getvalue().encode("cp949"))


if __name__ == "__main__":
    main()
